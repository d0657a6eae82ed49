"""`/api/v1/handoffs/`: hand an action item off, follow its deliveries, and the receivers' signed callback.

Lists and details come from `handoffs.selectors` (scoped by user); a dispatch is one call to
`handoffs.services.handoff_dispatch` and a callback one call to `handoff_callback_record`, which check
permission and scope themselves.
"""

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from handoffs import signing
from handoffs.api.authentication import HandoffSignatureAuthentication
from handoffs.api.filters import DeliveryFilter
from handoffs.api.serializers import (
    CallbackInputSerializer,
    CallbackResultSerializer,
    DeliverySerializer,
    DispatchInputSerializer,
)
from handoffs.models import Delivery
from handoffs.selectors import delivery_list_detailed
from handoffs.services import handoff_callback_record, handoff_dispatch
from portal.api.permissions import require_perm
from portal.api.schema import ErrorDetail, error_responses

CanView = require_perm("handoffs.view_delivery", to="see hand-off deliveries")
CanDispatch = require_perm("handoffs.dispatch_handoff", to="hand action items off")

DISPATCH_DESCRIPTION = """\
Hands an approved ticket, containment or revocation action item off to its webhook endpoint (the active
endpoint of its team for its kind, else of every team for its kind, else its team's catch-all). The delivery
is created at once (202) and sent in the background: a JSON POST signed with HMAC-SHA256
(`X-Portal-Signature: sha256=<hex>` over `X-Portal-Timestamp + "." + body`, with `X-Portal-Idempotency-Key`),
retried with exponential backoff; follow it at the `Location`. The payload names the case, the action item,
the team and the identities, and credentials by preview only: never a secret.

Refused: a proposal nobody has approved yet (400), a kind that is not handed off (400), no endpoint (400),
an item done or cancelled, a case closed, dismissed or in accepted risk, or an item already handed off and
not failed (409)."""

CALLBACK_DESCRIPTION = f"""\
The receiver (ticketing, containment, revocation) reports the outcome of a hand-off. No session or token:
the callback is authenticated by its signature, made like the portal's own: `{signing.HEADER_SIGNATURE}:
sha256=<hex>`, HMAC-SHA256 over `{signing.HEADER_TIMESTAMP} + "." + body` with the endpoint's key;
`{signing.HEADER_TIMESTAMP}` in seconds since the epoch, within 5 minutes of the portal's clock; the
hand-off named by its idempotency key (`{signing.HEADER_IDEMPOTENCY_KEY}` or the body's `idempotency_key`).

`done` marks the action item done with the `external_reference`; `failed` puts it back to open and tells the
team lead. Both are noted on the case. A callback is accepted once per hand-off: a replay is refused (403)
and changes nothing, as does a stale timestamp, an unknown key or a wrong signature (401)."""


@extend_schema_view(
    list=extend_schema(
        summary="Hand-off deliveries the caller may see",
        description="Newest first, each with its attempt log. Staff roles see every delivery, owners none.",
        responses={200: DeliverySerializer, **error_responses(400, 403)},
    ),
    retrieve=extend_schema(
        summary="One hand-off delivery, with its attempt log",
        responses={200: DeliverySerializer, **error_responses(403, 404)},
    ),
)
class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Delivery]):
    serializer_class = DeliverySerializer
    permission_classes = (CanView,)
    lookup_value_regex = r"\d+"
    filterset_class = DeliveryFilter
    search_fields = ("external_reference", "action_item__title")
    ordering_fields = ("id", "created_at")
    ordering = ("-id",)

    def get_queryset(self) -> QuerySet[Delivery]:
        return delivery_list_detailed(user=self.request.user)


class DispatchView(APIView):
    permission_classes = (CanDispatch,)

    @extend_schema(
        operation_id="handoffs_dispatch",
        summary="Hand an action item off to its webhook endpoint",
        description=DISPATCH_DESCRIPTION,
        request=DispatchInputSerializer,
        responses={202: DeliverySerializer, **error_responses(400, 403, 409)},
        examples=[OpenApiExample("A revocation", value={"action_item": 42}, request_only=True)],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = DispatchInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        delivery = handoff_dispatch(actor=request.user, action_item_id=body.validated_data["action_item"])
        shown = delivery_list_detailed(user=request.user).get(pk=delivery.pk)
        location = request.build_absolute_uri(reverse("api-handoff-delivery-detail", args=(delivery.pk,)))
        return Response(
            DeliverySerializer(shown).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location}
        )


class IsSignedCallback(BasePermission):
    message = "This callback is not signed for a hand-off."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Delivery)


class CallbackView(APIView):
    authentication_classes = (HandoffSignatureAuthentication,)
    permission_classes = (IsSignedCallback,)
    # The signature covers the exact bytes of a JSON body.
    parser_classes = (JSONParser,)
    throttle_classes = ()

    @extend_schema(
        operation_id="handoffs_callback",
        summary="A receiver reports a hand-off done or failed (signed callback)",
        description=CALLBACK_DESCRIPTION,
        request=CallbackInputSerializer,
        parameters=[
            OpenApiParameter(
                signing.HEADER_TIMESTAMP,
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Seconds since the epoch.",
            ),
            OpenApiParameter(
                signing.HEADER_IDEMPOTENCY_KEY,
                str,
                OpenApiParameter.HEADER,
                description="The hand-off's idempotency key (or in the body).",
            ),
        ],
        responses={
            200: CallbackResultSerializer,
            **error_responses(400),
            401: OpenApiResponse(
                ErrorDetail,
                description="Missing or stale timestamp, unknown idempotency key or wrong signature. Nothing "
                "was changed.",
            ),
            403: OpenApiResponse(
                ErrorDetail,
                description="This hand-off's outcome was already recorded (a replay). Nothing was changed.",
            ),
            409: OpenApiResponse(
                ErrorDetail, description="The case changed meanwhile; send the callback again."
            ),
        },
        examples=[
            OpenApiExample(
                "Ticket opened",
                value={
                    "idempotency_key": "5f0c6a53-8a4e-4f8e-9d55-1b2f9f7c1e20",
                    "status": "done",
                    "external_reference": "https://jira.example.com/browse/PAY-1234",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = CallbackInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        delivery = handoff_callback_record(
            actor=request.user,
            delivery_id=request.auth.pk,
            outcome=data["status"],
            external_reference=data.get("external_reference", ""),
            note=data.get("note", ""),
        )
        return Response(CallbackResultSerializer(delivery).data)
