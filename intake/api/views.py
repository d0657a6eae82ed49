"""`/api/v1/intake/`: an assistant submits its output; the portal answers with what it did and why.

Lists and details come from `intake.selectors` (scoped by user); a submission is one call to
`intake.services.assistant_output_submit`, which checks permission and scope itself.
"""

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from intake.api.filters import AssistantOutputFilter
from intake.api.serializers import AssistantOutputInputSerializer, AssistantOutputSerializer
from intake.models import AssistantOutput
from intake.rules import Facts
from intake.selectors import assistant_output_list_detailed
from intake.services import ProposedActionInput, assistant_output_submit
from portal.api.permissions import require_perm
from portal.api.schema import error_responses

CanSubmit = require_perm("intake.submit_assistantoutput", to="submit assistant outputs")
CanView = require_perm("intake.view_assistantoutput", to="see assistant outputs")

SUBMIT_DESCRIPTION = """\
The portal applies the guidance's rule: **if the output changes ownership, state or evidence requirements,
it stops being chat.**

- *ownership* changes when it triggers downstream work or proposes any action;
- *state* changes when it needs review by more than one person, or proposes a containment, revocation or
  rotation;
- *evidence requirements* change when it must be retained as evidence or depends on fresh context.

Then it opens a case (`case_opened`), or joins the oldest case of the same `case_kind` that is still open to
work (identified, confirmed, assigned or in progress) and concerns one of its identities (`case_joined`).
The recommendation and each proposed action become action items that nobody may start or complete until a
person with the approver role, other than the submitter, approves them. An output that must be retained is
kept on the case as evidence (canonical JSON); one that depends on fresh context gets the identities'
current criticality, privilege and exposure captured. Otherwise it is kept as a read-only `advisory`.

`reason` says which happened and why, naming the facts; `triggers` lists them by name. Text shaped like a
credential is masked before anything is stored (`masked_fields` says where); never send a secret:
credentials are named by id or fingerprint. A malformed payload is refused whole (400, field errors) and
nothing is stored."""

EXAMPLE = {
    "summary": "The deploy key of payments-api-bot was pasted in #payments-ops and is still valid.",
    "recommendation": "Revoke the key and issue a new one through the vault.",
    "nhis": [12],
    "credential_fingerprints": [],
    "proposed_actions": [
        {"kind": "revocation", "description": "Revoke the leaked deploy key."},
        {"kind": "ticket", "description": "Open a change ticket for the new key."},
    ],
    "source": {"assistant": "SecOps Copilot 2.1", "conversation_ref": "https://chat.example.com/c/8812"},
    "facts": {
        "needs_multi_person_review": True,
        "triggers_downstream_work": True,
        "must_be_retained_as_evidence": True,
        "depends_on_fresh_context": False,
    },
}


@extend_schema_view(
    list=extend_schema(
        summary="Assistant outputs the caller may see",
        description=(
            "Staff roles see every output; NHI owners see the outputs that concern an identity they or "
            "their teams own."
        ),
        responses={200: AssistantOutputSerializer, **error_responses(400, 403)},
    ),
    retrieve=extend_schema(
        summary="One assistant output",
        responses={200: AssistantOutputSerializer, **error_responses(403, 404)},
    ),
    create=extend_schema(
        summary="Submit an assistant's output: the portal opens or joins a case, or keeps an advisory",
        description=SUBMIT_DESCRIPTION,
        request=AssistantOutputInputSerializer,
        responses={201: AssistantOutputSerializer, **error_responses(400, 403)},
        examples=[OpenApiExample("A leaked key to revoke", value=EXAMPLE, request_only=True)],
    ),
)
class AssistantOutputViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[AssistantOutput],
):
    serializer_class = AssistantOutputSerializer
    lookup_value_regex = r"\d+"
    filterset_class = AssistantOutputFilter
    search_fields = ("summary", "recommendation", "assistant")
    ordering_fields = ("id", "submitted_at")
    ordering = ("-id",)

    def get_permissions(self) -> list[BasePermission]:
        # See with `intake.view_assistantoutput`; submit with `intake.submit_assistantoutput`.
        return [CanSubmit() if self.action == "create" else CanView()]

    def get_queryset(self) -> QuerySet[AssistantOutput]:
        return assistant_output_list_detailed(user=self.request.user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = AssistantOutputInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        output = assistant_output_submit(
            actor=request.user,
            summary=data["summary"],
            recommendation=data["recommendation"],
            assistant=data["source"]["assistant"],
            conversation_ref=data["source"]["conversation_ref"],
            facts=Facts(**data["facts"]),
            nhi_ids=data["nhis"],
            credential_ids=data["credentials"],
            credential_fingerprints=data["credential_fingerprints"],
            proposed_actions=[ProposedActionInput(**action) for action in data["proposed_actions"]],
            case_kind=data["case_kind"],
        )
        shown = self.get_queryset().get(pk=output.pk)
        location = request.build_absolute_uri(reverse("api-intake-detail", args=(output.pk,)))
        return Response(
            self.get_serializer(shown).data, status=status.HTTP_201_CREATED, headers={"Location": location}
        )
