"""`/api/v1/tokens/`: a person's own API tokens. The raw token is in the creation answer only."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal import services
from portal.api.schema import error_responses
from portal.models import ApiToken
from portal.selectors import api_token_list


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    class Meta:
        model = ApiToken
        fields: tuple[str, ...] = (
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        )
        read_only_fields: tuple[str, ...] = fields


class ApiTokenCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=120, help_text="What will use it, e.g. 'gitleaks in CI'.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The token itself (`nhi_...`): shown here once, never again."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields: tuple[str, ...] = (*ApiTokenSerializer.Meta.fields, "token")
        read_only_fields: tuple[str, ...] = fields


@extend_schema_view(
    list=extend_schema(
        summary="Your API tokens", responses={200: ApiTokenSerializer, **error_responses(400)}
    ),
    retrieve=extend_schema(
        summary="One of your API tokens", responses={200: ApiTokenSerializer, **error_responses(404)}
    ),
)
class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ApiToken]):
    serializer_class = ApiTokenSerializer
    lookup_value_regex = r"\d+"
    search_fields = ("name", "prefix")
    ordering_fields = ("id", "created_at")
    ordering = ("-id",)

    def get_queryset(self) -> QuerySet[ApiToken]:
        return api_token_list(user=self.request.user)

    @extend_schema(
        summary="Create an API token for yourself",
        description=(
            "Only from a signed-in session, not with another token: a leaked token must not be able to mint "
            "new ones. The answer carries the token once; only its SHA-256 is kept."
        ),
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer, **error_responses(400, 403)},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if isinstance(request.auth, ApiToken):
            raise PermissionDenied(
                "API tokens are created from a signed-in session or the admin, not with a token."
            )
        serializer = ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, raw = services.api_token_create(
            actor=request.user,
            user_id=request.user.pk or 0,
            name=serializer.validated_data["name"],
            expires_at=serializer.validated_data["expires_at"],
        )
        token.token = raw  # type: ignore[attr-defined]
        response = Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        summary="Revoke one of your API tokens",
        description="It stops working at once; revoking it again changes nothing.",
        request=None,
        responses={200: ApiTokenSerializer, **error_responses(403, 404)},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        token = services.api_token_revoke(actor=request.user, token_id=self.get_object().pk)
        return Response(ApiTokenSerializer(token).data)
