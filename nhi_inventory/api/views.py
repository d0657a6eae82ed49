"""`/api/v1/teams/`, `/api/v1/nhis/`, `/api/v1/credentials/`. Lists come from the selectors (scoped by
user); every write is one service call, which checks permission and scope itself."""

from typing import Any

from django.db.models import QuerySet
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from nhi_inventory import services
from nhi_inventory.api.filters import CredentialFilter, NhiFilter
from nhi_inventory.api.serializers import (
    CredentialRegisterSerializer,
    CredentialSerializer,
    CredentialStatusSerializer,
    NhiSerializer,
    NhiWriteSerializer,
    TeamSerializer,
)
from nhi_inventory.models import Credential, NonHumanIdentity, Team
from nhi_inventory.selectors import credential_list, nhi_list, team_list
from portal.api.schema import error_responses


@extend_schema_view(
    list=extend_schema(
        summary="Teams the caller may see", responses={200: TeamSerializer, **error_responses(400)}
    ),
    retrieve=extend_schema(summary="One team", responses={200: TeamSerializer, **error_responses(404)}),
)
class TeamViewSet(viewsets.ReadOnlyModelViewSet[Team]):
    serializer_class = TeamSerializer
    lookup_value_regex = r"\d+"
    search_fields = ("name", "slug")
    ordering_fields = ("name", "id")
    ordering = ("name",)

    def get_queryset(self) -> QuerySet[Team]:
        return team_list(user=self.request.user).select_related("lead")


@extend_schema_view(
    list=extend_schema(
        summary="Identities the caller may see",
        description="Owners see their teams' and their own identities; staff roles see every identity.",
        responses={200: NhiSerializer, **error_responses(400)},
    ),
    retrieve=extend_schema(summary="One identity", responses={200: NhiSerializer, **error_responses(404)}),
    create=extend_schema(
        summary="Register an identity",
        request=NhiWriteSerializer,
        responses={201: NhiSerializer, **error_responses(400, 403)},
    ),
    partial_update=extend_schema(
        summary="Change an identity",
        description="Owners may maintain their teams' identities but not change who owns them.",
        request=NhiWriteSerializer,
        responses={200: NhiSerializer, **error_responses(400, 403, 404)},
    ),
)
class NhiViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[NonHumanIdentity],
):
    lookup_value_regex = r"\d+"
    filterset_class = NhiFilter
    search_fields = ("name", "external_id")
    # Only non-null columns: the cursor cannot page past a NULL.
    ordering_fields = ("name", "criticality", "privilege_level", "created_at", "updated_at", "id")
    ordering = ("name",)

    def get_queryset(self) -> QuerySet[NonHumanIdentity]:
        return nhi_list(user=self.request.user).select_related("owner")

    def get_serializer_class(self) -> Any:
        return NhiWriteSerializer if self.action in ("create", "partial_update") else NhiSerializer

    def _shown(self, identity: NonHumanIdentity, *, code: int) -> Response:
        return Response(NhiSerializer(identity, context=self.get_serializer_context()).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("reason", None)
        identity = services.nhi_create(actor=request.user, **data)
        return self._shown(identity, code=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        identity = self.get_object()
        serializer = self.get_serializer(identity, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        reason = changes.pop("reason", "")
        identity = services.nhi_update(actor=request.user, nhi_id=identity.pk, changes=changes, reason=reason)
        return self._shown(identity, code=status.HTTP_200_OK)


@extend_schema_view(
    list=extend_schema(
        summary="Credentials the caller may see",
        description="Fingerprints and redacted previews only: the portal never holds a credential's secret.",
        responses={200: CredentialSerializer, **error_responses(400)},
    ),
    retrieve=extend_schema(
        summary="One credential", responses={200: CredentialSerializer, **error_responses(404)}
    ),
    create=extend_schema(
        summary="Register a credential by its secret",
        description=(
            "The secret is fingerprinted (keyed HMAC-SHA256) and a redacted preview kept; the secret itself "
            "is dropped and never stored, logged or sent back."
        ),
        request=CredentialRegisterSerializer,
        responses={201: CredentialSerializer, **error_responses(400, 403)},
    ),
)
class CredentialViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Credential],
):
    lookup_value_regex = r"\d+"
    filterset_class = CredentialFilter
    search_fields = ("label", "preview")
    ordering_fields = ("id", "created_at")
    ordering = ("-id",)

    def get_queryset(self) -> QuerySet[Credential]:
        return credential_list(user=self.request.user)

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return CredentialRegisterSerializer
        if self.action == "set_status":
            return CredentialStatusSerializer
        return CredentialSerializer

    @method_decorator(sensitive_variables())
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Error reports (a 500's email or log) then show neither the locals nor a form-encoded secret.
        setattr(request._request, "sensitive_post_parameters", ["secret"])  # noqa: B010
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        credential = services.credential_register(
            actor=request.user,
            nhi_id=data["nhi"],
            credential_type=data["credential_type"],
            secret=data["secret"],
            label=data["label"],
            issued_at=data["issued_at"],
            expires_at=data["expires_at"],
        )
        return Response(CredentialSerializer(credential).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Mark a credential active, rotated or revoked",
        description="A revoked credential stays revoked.",
        request=CredentialStatusSerializer,
        responses={200: CredentialSerializer, **error_responses(400, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, pk: str | None = None) -> Response:
        credential = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credential = services.credential_set_status(
            actor=request.user,
            credential_id=credential.pk,
            status=serializer.validated_data["status"],
            reason=serializer.validated_data["reason"],
        )
        return Response(CredentialSerializer(credential).data)
