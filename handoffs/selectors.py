"""What a person may see of the hand-offs, and which endpoint an action item goes to."""

from django.db.models import Prefetch, Q, QuerySet

from cases.models import ActionItem
from cases.selectors import action_item_list, sees_all_cases
from handoffs.models import Delivery, DeliveryAttempt, WebhookEndpoint
from portal.permissions import Actor


def _signed_in(user: Actor) -> bool:
    return bool(user.is_authenticated and user.is_active)


def webhook_endpoint_list(*, user: Actor) -> QuerySet[WebhookEndpoint]:
    endpoints = WebhookEndpoint.objects.all()
    if not _signed_in(user) or not user.has_perm("handoffs.view_webhookendpoint"):
        return endpoints.none()
    return endpoints


def delivery_list(*, user: Actor) -> QuerySet[Delivery]:
    """Deliveries of the action items the user may see, for those who may see deliveries at all."""
    deliveries = Delivery.objects.all()
    if not _signed_in(user) or not user.has_perm("handoffs.view_delivery"):
        return deliveries.none()
    if sees_all_cases(user):
        return deliveries
    return deliveries.filter(action_item__in=action_item_list(user=user))


def delivery_list_detailed(*, user: Actor) -> QuerySet[Delivery]:
    """The list with everything its API representation shows, in a fixed number of queries."""
    return (
        delivery_list(user=user)
        .select_related("endpoint", "action_item__case", "action_item__owning_team", "dispatched_by")
        .prefetch_related(Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("number")))
    )


def delivery_for_callback(*, idempotency_key: str) -> Delivery | None:
    """The delivery a callback names, with its endpoint (whose key verifies the callback)."""
    return Delivery.objects.select_related("endpoint").filter(idempotency_key=idempotency_key).first()


def endpoint_for(*, action_item: ActionItem) -> WebhookEndpoint | None:
    """The active endpoint for this item: its team's for its kind, else any team's for its kind, else its
    team's catch-all."""
    team_id, kind = action_item.owning_team_id, action_item.kind
    candidates = WebhookEndpoint.objects.filter(is_active=True).filter(
        Q(team_id=team_id, action_kind=kind)
        | Q(team__isnull=True, action_kind=kind)
        | Q(team_id=team_id, action_kind="")
    )
    ranked = sorted(
        candidates,
        key=lambda endpoint: (
            0
            if endpoint.team_id == team_id and endpoint.action_kind == kind
            else 1
            if endpoint.action_kind
            else 2
        ),
    )
    return ranked[0] if ranked else None
