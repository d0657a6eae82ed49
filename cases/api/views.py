"""`/api/v1/cases/`, `/evidence/`, `/action-items/`, `/approvals/`: thin views over selectors and services.

Each view scopes its rows with a selector (another team's case is a 404, never a 403), validates the input's
shape, calls one service (or `run_action`, which calls the case action's service) and serializes the result.
A write with a fixed permission first passes `RolePermission` (a case action checks its own in `run_action`):
a role without the permission the service will check gets a 403 whatever the body, so an auditor is refused
before anything is read.
"""

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from cases import services
from cases.api import serializers as s
from cases.api.filters import ActionItemFilter, ApprovalFilter, CaseFilter, EvidenceFilter
from cases.api.transitions import (
    ACTION_NAMES,
    CaseTransitionBody,
    action_content_type,
    describe_fields,
    run_action,
)
from cases.models import (
    ActionItem,
    Approval,
    ApprovalKind,
    Case,
    CaseControlMapping,
    CaseIdentity,
    CaseOrigin,
    Comment,
    Evidence,
)
from cases.selectors import action_item_list, approval_list, case_list, case_transition_log, evidence_list
from cases.workflow import available_actions, decidable_approvals
from portal.api.schema import error_responses

# --- Shared pieces -----------------------------------------------------------------------------------------


class RolePermission(BasePermission):
    """A write needs the role permission its service checks, named per view action in `write_permissions`."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        needed = getattr(view, "write_permissions", {}).get(getattr(view, "action", None))
        if needed is None or request.user.has_perm(needed):
            return True
        raise PermissionDenied(f"You may not do this: the permission {needed!r} is missing.")


class BinaryRenderer(BaseRenderer):
    """Lets a client ask for `application/octet-stream` (evidence downloads); errors keep their JSON body."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None
    render_style = "binary"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return JSONRenderer().render(data) if not isinstance(data, bytes) else data


def _user(request: Request) -> User:
    # IsAuthenticated has run: the user is signed in.
    user = request.user
    assert isinstance(user, User)
    return user


def _body(request: Request) -> Mapping[str, Any]:
    """The request's fields: the form fields of a multipart body, else the parsed JSON object."""
    data = request.POST if request.content_type.startswith("multipart/") else request.data
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": "Send the fields as a JSON object."})
    return data


def _work_data(request: Request, *read_here: str) -> dict[str, Any]:
    """The body without the fields a dedicated endpoint reads itself (`case`, an approval's `kind`)."""
    data = _body(request)
    return {key: data.get(key) for key in data if key not in ("case", *read_here)}


# Any path segment reaches the view, so `/cases/0.5/` is a JSON 404 like `/cases/999/`, not Django's page.
ANY_ID = r"[^/]+"
CASE_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Id of the case.")


# --- Cases -------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Cases you can see",
        description="Cursor-paginated. Owners see their teams' cases; outsiders an empty list.",
        responses={200: s.CaseListSerializer, **error_responses(400, 404)},
    ),
    retrieve=extend_schema(
        summary="One case: identities, assignee, team, due date, state, facts, control mappings, links",
        responses={200: s.CaseDetailSerializer, **error_responses(404)},
    ),
    create=extend_schema(
        summary="Open a case (case_open; origin `api`)",
        request=s.CaseCreateSerializer,
        responses={201: s.CaseDetailSerializer, **error_responses(400, 403)},
    ),
    partial_update=extend_schema(
        summary="Edit title, summary, kind, severity or due date (case_update), with a reason",
        description="State, assignee and team change only through transitions.",
        request=s.CaseUpdateSerializer,
        responses={200: s.CaseDetailSerializer, **error_responses(400, 403, 404)},
    ),
)
class CaseViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Case],
):
    queryset = Case.objects.none()  # for the schema; rows come from case_list
    lookup_value_regex = ANY_ID
    permission_classes = (IsAuthenticated, RolePermission)
    filterset_class = CaseFilter
    search_fields = ("title", "summary")
    ordering_fields = ("id", "created_at", "updated_at", "priority", "severity")
    ordering = ("-id",)
    http_method_names = ("get", "post", "patch", "head", "options")
    write_permissions = {
        "create": "cases.add_case",
        "partial_update": "cases.change_case",
        "link_identity": "cases.change_case",
        "unlink_identity": "cases.change_case",
        "comments": "cases.add_comment",
    }

    def get_queryset(self) -> QuerySet[Case]:
        cases = case_list(user=self.request.user).select_related("owning_team", "assignee")
        if self.action == "list":
            return cases
        return cases.select_related("opened_by").prefetch_related(
            Prefetch("identity_links", queryset=CaseIdentity.objects.select_related("nhi").order_by("id")),
            Prefetch(
                "control_mappings",
                queryset=CaseControlMapping.objects.filter(is_active=True).select_related(
                    "control__framework"
                ),
                to_attr="active_mappings",
            ),
        )

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        return s.CaseListSerializer if self.action == "list" else s.CaseDetailSerializer

    def _detail(self, case_id: int, *, status_code: int = status.HTTP_200_OK) -> Response:
        case = self.get_queryset().get(pk=case_id)
        return Response(
            s.CaseDetailSerializer(case, context=self.get_serializer_context()).data, status=status_code
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.CaseCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        case = services.case_open(actor=request.user, origin=CaseOrigin.API, **body.validated_data)
        return self._detail(case.pk, status_code=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        case = self.get_object()
        body = s.CaseUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        reason = changes.pop("reason", "")
        services.case_update(actor=request.user, case_id=case.pk, changes=changes, reason=reason)
        return self._detail(case.pk)

    @extend_schema(
        summary="Link an identity to the case (the `link_identity` action)",
        request=s.IdentityLinkBody,
        responses={200: s.CaseDetailSerializer, **error_responses(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], url_path="link-identity", url_name="link-identity")
    def link_identity(self, request: Request, pk: str) -> Response:
        case = self.get_object()
        run_action(case=case, user=_user(request), name="link_identity", data=_body(request))
        return self._detail(case.pk)

    @extend_schema(
        summary="Unlink an identity from the case (case_unlink_identity)",
        request=s.IdentityUnlinkSerializer,
        responses={200: s.CaseDetailSerializer, **error_responses(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], url_path="unlink-identity", url_name="unlink-identity")
    def unlink_identity(self, request: Request, pk: str) -> Response:
        case = self.get_object()
        body = s.IdentityUnlinkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.case_unlink_identity(actor=request.user, case_id=case.pk, nhi_id=body.validated_data["nhi"])
        return self._detail(case.pk)

    @extend_schema(
        summary="What you may do on this case now, and the fields each action needs",
        description=(
            "Every action the case page offers you in the case's current state: transitions and work "
            "(approval requests, action items, evidence, comments, control mappings), each with `allowed`, "
            "what blocks it, and its fields (derived from the form that validates it). Pending requests "
            "you may decide are listed under `approvals_to_decide`."
        ),
        responses={200: s.CaseTransitionsSerializer, **error_responses(404)},
    )
    @action(detail=True, methods=["get"], url_path="transitions", url_name="transitions")
    def transitions(self, request: Request, pk: str) -> Response:
        case = self.get_object()
        user = _user(request)

        def absolute(path: str) -> str:
            return request.build_absolute_uri(path)

        body = {
            "case": case.pk,
            "reference": case.reference,
            "state": case.state,
            "actions": [
                {
                    "name": item.action.name,
                    "label": item.action.label,
                    "is_transition": item.action.is_transition,
                    "allowed": item.allowed,
                    "blocked_by": list(item.blocked_by),
                    "danger": item.action.danger,
                    "content_type": action_content_type(item.action),
                    "fields": describe_fields(item.action.form_class),
                    "url": absolute(reverse("api-case-transition", args=(case.pk, item.action.name))),
                }
                for item in available_actions(case=case, user=user)
            ],
            "approvals_to_decide": [
                {
                    "id": approval.pk,
                    "kind": approval.kind,
                    "reason": approval.reason,
                    "risk_expires_on": approval.risk_expires_on,
                    "requested_by": approval.requested_by,
                    "url": absolute(reverse("api-approval-decide", args=(approval.pk,))),
                }
                for approval in decidable_approvals(case=case, user=user)
            ],
        }
        return Response(s.CaseTransitionsSerializer(body).data)

    @extend_schema(
        summary="Perform one action on the case: a transition, an approval request, or work",
        description=(
            "The body is validated with the action's form (see its `fields` in GET .../transitions/): "
            "a missing reason, assignee, expiry or decision is a 400 naming the field; a guard that blocks "
            "(no evidence, no approval) is a 400 listing its refusals. 409 when the case's state no longer "
            "allows the action (someone moved it first); 403 when it is not yours to take. "
            "`capture_evidence` takes multipart/form-data (a file). Answers with the case."
        ),
        parameters=[
            CASE_ID,
            OpenApiParameter(
                "name", str, OpenApiParameter.PATH, enum=ACTION_NAMES, description="The action."
            ),
        ],
        request={"application/json": CaseTransitionBody, "multipart/form-data": CaseTransitionBody},
        responses={200: s.CaseDetailSerializer, **error_responses(400, 403, 404, 409, transition=True)},
    )
    @action(detail=True, methods=["post"], url_path=r"transitions/(?P<name>[^/]+)", url_name="transition")
    def transition(self, request: Request, pk: str, name: str) -> Response:
        case = self.get_object()
        run_action(case=case, user=_user(request), name=name, data=_body(request), files=request.FILES)
        return self._detail(case.pk)

    @extend_schema(
        summary="The case's lifecycle log and every saved version of it (read-only)",
        responses={200: s.CaseHistorySerializer, **error_responses(404)},
    )
    @action(detail=True, methods=["get"], url_path="history", url_name="history")
    def history(self, request: Request, pk: str) -> Response:
        case = self.get_object()
        records = list(case.history.select_related("history_user").order_by("history_date", "history_id"))
        body = {"transitions": case_transition_log(case=case), "history": s.history_rows(records)}
        return Response(s.CaseHistorySerializer(body).data)

    @extend_schema(
        methods=["GET"],
        summary="The case's comments",
        responses={200: s.CommentSerializer(many=True), **error_responses(400, 404)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Comment on the case (the `comment` action)",
        request=s.CommentAddBody,
        responses={201: s.CommentSerializer, **error_responses(400, 403, 404, 409)},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="comments",
        url_name="comments",
        filter_backends=(),
    )
    def comments(self, request: Request, pk: str) -> Response:
        case = self.get_object()
        if request.method == "POST":
            comment = run_action(case=case, user=_user(request), name="comment", data=_body(request))
            assert isinstance(comment, Comment)
            return Response(s.CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
        page = self.paginate_queryset(case.comments.select_related("author"))  # type: ignore[arg-type]
        return self.get_paginated_response(s.CommentSerializer(page, many=True).data)


# --- Work on cases -----------------------------------------------------------------------------------------


def _case_for_work(request: Request, ref: type[s.CaseRefSerializer] = s.CaseRefSerializer) -> dict[str, Any]:
    """The case a piece of work names in its body; 400 naming `case` when the caller cannot see it."""
    data = _body(request)
    body = ref(
        data={key: data.get(key) for key in ref._declared_fields if key in data}, context={"request": request}
    )
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


@extend_schema_view(
    list=extend_schema(
        summary="Evidence on the cases you can see",
        responses={200: s.EvidenceSerializer, **error_responses(400, 404)},
    ),
    retrieve=extend_schema(
        summary="One evidence item", responses={200: s.EvidenceSerializer, **error_responses(404)}
    ),
    create=extend_schema(
        summary="Capture evidence (the `capture_evidence` action): a file, a URL or a note",
        description=(
            "multipart/form-data for a file. The server computes the SHA-256 and size of the file (or of the "
            "URL or note) and returns them. Evidence is immutable once captured."
        ),
        request={"multipart/form-data": s.EvidenceCaptureBody, "application/json": s.EvidenceCaptureBody},
        responses={201: s.EvidenceSerializer, **error_responses(400, 403, 409, transition=True)},
    ),
)
class EvidenceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Evidence],
):
    queryset = Evidence.objects.none()
    lookup_value_regex = ANY_ID
    serializer_class = s.EvidenceSerializer
    permission_classes = (IsAuthenticated, RolePermission)
    filterset_class = EvidenceFilter
    search_fields = ("title",)
    ordering_fields = ("id", "captured_at", "size")
    ordering = ("-id",)
    write_permissions = {"create": "cases.add_evidence"}

    def get_queryset(self) -> QuerySet[Evidence]:
        return evidence_list(user=self.request.user).select_related("case", "captured_by")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        case = _case_for_work(request)["case"]
        evidence = run_action(
            case=case,
            user=_user(request),
            name="capture_evidence",
            data=_work_data(request),
            files=request.FILES,
        )
        assert isinstance(evidence, Evidence)
        evidence = self.get_queryset().get(pk=evidence.pk)
        return Response(self.get_serializer(evidence).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Download an evidence file",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file."),
            **error_responses(404),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="download",
        url_name="download",
        renderer_classes=(JSONRenderer, BinaryRenderer),
    )
    def download(self, request: Request, pk: str) -> FileResponse:
        evidence = self.get_object()
        if not evidence.file:
            raise Http404("This evidence has no file: it is a URL or a note.")
        return FileResponse(
            evidence.file.open("rb"),
            as_attachment=True,
            filename=evidence.file.name.rsplit("/", 1)[-1],
            content_type="application/octet-stream",
        )


@extend_schema_view(
    list=extend_schema(
        summary="Action items on the cases you can see (owners: also those routed to their teams)",
        responses={200: s.ActionItemSerializer, **error_responses(400, 404)},
    ),
    retrieve=extend_schema(
        summary="One action item", responses={200: s.ActionItemSerializer, **error_responses(404)}
    ),
    create=extend_schema(
        summary="Add an action item to a case (the `add_action_item` action)",
        request=s.ActionItemAddBody,
        responses={201: s.ActionItemSerializer, **error_responses(400, 403, 409, transition=True)},
    ),
)
class ActionItemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[ActionItem],
):
    queryset = ActionItem.objects.none()
    lookup_value_regex = ANY_ID
    serializer_class = s.ActionItemSerializer
    permission_classes = (IsAuthenticated, RolePermission)
    filterset_class = ActionItemFilter
    search_fields = ("title", "external_reference")
    ordering_fields = ("id", "created_at")
    ordering = ("-id",)
    write_permissions = {
        "create": "cases.add_actionitem",
        "set_status": "cases.change_actionitem",
        "approve": "cases.approve_actionitem",
    }

    def get_queryset(self) -> QuerySet[ActionItem]:
        return action_item_list(user=self.request.user).select_related(
            "case", "owning_team", "created_by", "approved_by"
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        case = _case_for_work(request)["case"]
        item = run_action(case=case, user=_user(request), name="add_action_item", data=_work_data(request))
        assert isinstance(item, ActionItem)
        return Response(
            self.get_serializer(self.get_queryset().get(pk=item.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Change an action item's status (action_item_set_status)",
        description=(
            "Owners may update the items routed to their teams. Not on closed, dismissed or "
            "risk-accepted cases (409)."
        ),
        request=s.ActionItemStatusSerializer,
        responses={200: s.ActionItemSerializer, **error_responses(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], url_path="status", url_name="status")
    def set_status(self, request: Request, pk: str) -> Response:
        item = self.get_object()
        body = s.ActionItemStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.action_item_set_status(
            actor=request.user,
            action_item_id=item.pk,
            status=body.validated_data["status"],
            external_reference=body.validated_data.get("external_reference"),
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=item.pk)).data)

    @extend_schema(
        summary="Approve a proposed action item so it may be worked on (action_item_approve)",
        description="Four-eyes: never by whoever proposed it (403). 409 when already approved or cancelled.",
        request=None,
        responses={200: s.ActionItemSerializer, **error_responses(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], url_path="approve", url_name="approve")
    def approve(self, request: Request, pk: str) -> Response:
        item = self.get_object()
        services.action_item_approve(actor=request.user, action_item_id=item.pk)
        return Response(self.get_serializer(self.get_queryset().get(pk=item.pk)).data)


APPROVAL_ACTIONS = {
    ApprovalKind.CLOSURE: "request_closure",
    ApprovalKind.RISK_ACCEPTANCE: "request_risk_acceptance",
}


@extend_schema_view(
    list=extend_schema(
        summary="Approval requests on the cases you can see",
        responses={200: s.ApprovalSerializer, **error_responses(400, 404)},
    ),
    retrieve=extend_schema(
        summary="One approval request", responses={200: s.ApprovalSerializer, **error_responses(404)}
    ),
    create=extend_schema(
        summary="Request a closure or risk-acceptance approval",
        description="The `request_closure` or `request_risk_acceptance` action, chosen by `kind`.",
        request=s.ApprovalRequestBody,
        responses={201: s.ApprovalSerializer, **error_responses(400, 403, 409, transition=True)},
    ),
)
class ApprovalViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Approval],
):
    queryset = Approval.objects.none()
    lookup_value_regex = ANY_ID
    serializer_class = s.ApprovalSerializer
    permission_classes = (IsAuthenticated, RolePermission)
    filterset_class = ApprovalFilter
    ordering_fields = ("id", "requested_at")
    ordering = ("-id",)
    write_permissions = {"create": "cases.request_approval", "decide": "cases.decide_approval"}

    def get_queryset(self) -> QuerySet[Approval]:
        return approval_list(user=self.request.user).select_related("case", "requested_by", "decided_by")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ref = _case_for_work(request, s.ApprovalRequestRefSerializer)
        approval = run_action(
            case=ref["case"],
            user=_user(request),
            name=APPROVAL_ACTIONS[ref["kind"]],
            data=_work_data(request, "kind"),
        )
        assert isinstance(approval, Approval)
        return Response(
            self.get_serializer(self.get_queryset().get(pk=approval.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Approve or reject a pending request (approval_decide; four-eyes: not your own)",
        description=(
            "Approving a risk acceptance also moves the case to risk accepted. 403 for your own request or "
            "without the approver role; 409 when it is no longer pending."
        ),
        request=s.ApprovalDecisionSerializer,
        responses={200: s.ApprovalSerializer, **error_responses(400, 403, 404, 409, transition=True)},
    )
    @action(detail=True, methods=["post"], url_path="decide", url_name="decide")
    def decide(self, request: Request, pk: str) -> Response:
        approval = self.get_object()
        body = s.ApprovalDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.approval_decide(
            actor=request.user,
            approval_id=approval.pk,
            approve=body.validated_data["approve"],
            note=body.validated_data["note"],
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=approval.pk)).data)
