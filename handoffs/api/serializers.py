"""How hand-offs look over the API, and the shape of what clients and receivers send.

Output serializers read only what `delivery_list_detailed` loaded, so a list costs the same number of queries
for 2 rows as for 50. Input serializers check the shape only; the services decide the rest.
"""

from typing import Any

from rest_framework import serializers

from cases.api.filters import MAX_ID
from handoffs.models import REPORTED_OUTCOMES, Delivery, DeliveryAttempt


class DeliveryAttemptSerializer(serializers.ModelSerializer[DeliveryAttempt]):
    class Meta:
        model = DeliveryAttempt
        fields = (
            "number",
            "started_at",
            "duration_ms",
            "status_code",
            "succeeded",
            "error_class",
            "error_message",
            "retry_in_seconds",
        )
        read_only_fields = fields


class DeliveryActionItemSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField()
    case_id = serializers.IntegerField()
    case_reference = serializers.CharField(source="case.reference")
    owning_team = serializers.CharField(source="owning_team.name")


class EndpointRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class DeliverySerializer(serializers.ModelSerializer[Delivery]):
    action_item = DeliveryActionItemSerializer()
    endpoint = EndpointRefSerializer()
    dispatched_by = serializers.CharField(source="dispatched_by.username")
    attempt_log = DeliveryAttemptSerializer(many=True)
    payload = serializers.JSONField(
        help_text="Exactly what was sent (names, references, previews; no secret)."
    )

    class Meta:
        model = Delivery
        fields = (
            "id",
            "idempotency_key",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
            "delivered_at",
            "failed_at",
            "outcome",
            "outcome_at",
            "external_reference",
            "outcome_note",
            "action_item",
            "endpoint",
            "dispatched_by",
            "payload",
            "attempt_log",
        )
        read_only_fields = fields


class DispatchInputSerializer(serializers.Serializer[Any]):
    action_item = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="The id of the action item to hand off."
    )


class CallbackInputSerializer(serializers.Serializer[Any]):
    idempotency_key = serializers.UUIDField(
        required=False, help_text="The hand-off's key (or send it in X-Portal-Idempotency-Key)."
    )
    status = serializers.ChoiceField(
        choices=REPORTED_OUTCOMES,
        help_text="`done`: the work is done; `failed`: it could not be (the action item goes back to open).",
    )
    external_reference = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        help_text="Where the work is: a ticket id or URL, a change id. Required with `done`.",
    )
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="A sentence for the case (kept to 500)."
    )


class CallbackResultSerializer(serializers.ModelSerializer[Delivery]):
    action_item_status = serializers.CharField(source="action_item.status")

    class Meta:
        model = Delivery
        fields = ("idempotency_key", "outcome", "outcome_at", "external_reference", "action_item_status")
        read_only_fields = fields
