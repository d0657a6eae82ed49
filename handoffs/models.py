"""Downstream hand-offs: action items sent, as signed JSON, to the webhook of a ticketing, containment or
revocation system, and the answer that system calls back with.

- `WebhookEndpoint`: where hand-offs of a team and/or an action kind go. Its signing key is never stored: it
  is derived from `HANDOFF_SIGNING_KEY`, the endpoint's id and its rotation counter (`handoffs.signing`).
- `Delivery`: one action item handed off once, with the exact payload sent (never a secret), its idempotency
  key, how sending went and what the receiver reported back.
- `DeliveryAttempt`: one POST of a delivery: status code, duration, error class and a short message; never
  the response body, which a receiver might fill with anything.

Rows are written only by `handoffs.services`.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from cases.models import ActionItem, ActionKind
from nhi_inventory.models import Team

# The kinds of work that leave the portal: a ticket to open, a containment to apply, a credential to revoke.
DISPATCHABLE_KINDS = (ActionKind.TICKET, ActionKind.CONTAINMENT, ActionKind.REVOCATION)


class EndpointKind(models.TextChoices):
    ANY = "", "Any kind (a team's catch-all)"
    TICKET = ActionKind.TICKET.value, ActionKind.TICKET.label
    CONTAINMENT = ActionKind.CONTAINMENT.value, ActionKind.CONTAINMENT.label
    REVOCATION = ActionKind.REVOCATION.value, ActionKind.REVOCATION.label


class WebhookEndpoint(models.Model):
    name = models.CharField(max_length=120, unique=True, help_text="e.g. 'Payments Jira'.")
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="webhook_endpoints",
        help_text="Hand-offs of this team's action items. Empty: every team's (for the kind below).",
    )
    action_kind = models.CharField(
        max_length=16,
        choices=EndpointKind.choices,
        blank=True,
        help_text="Hand-offs of this kind of action item. Empty: every kind (for the team above).",
    )
    url = models.URLField(
        "URL", max_length=500, help_text="https:// (http:// only in development or to this machine)."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive endpoints receive nothing.")
    key_version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Rotation counter: the signing key changes when it goes up."
    )
    key_rotated_at = models.DateTimeField(editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", editable=False
    )
    created_at = models.DateTimeField(editable=False)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "webhook endpoint"
        ordering = ("name",)
        constraints = (
            models.CheckConstraint(
                condition=Q(team__isnull=False) | ~Q(action_kind=""),
                name="webhook_endpoint_team_or_kind",
            ),
            # At most one active endpoint answers each (team, kind) question; NULL teams are not equal to
            # each other in a unique index, so the "every team" endpoints get their own constraint.
            models.UniqueConstraint(
                fields=("team", "action_kind"),
                condition=Q(is_active=True, team__isnull=False),
                name="webhook_endpoint_active_team_kind",
            ),
            models.UniqueConstraint(
                fields=("action_kind",),
                condition=Q(is_active=True, team__isnull=True),
                name="webhook_endpoint_active_kind",
            ),
        )

    def __str__(self) -> str:
        return self.name

    @property
    def scope(self) -> str:
        team = self.team.name if self.team_id and self.team else "every team"
        kind = self.get_action_kind_display().lower() if self.action_kind else "every kind"
        return f"{kind}, {team}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed: gave up"


class HandoffOutcome(models.TextChoices):
    NONE = "", "No answer yet"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


# What a receiver may report (the outcome without "no answer yet").
REPORTED_OUTCOMES = [(HandoffOutcome.DONE.value, "Done"), (HandoffOutcome.FAILED.value, "Failed")]


class Delivery(models.Model):
    idempotency_key = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Sent with every attempt (X-Portal-Idempotency-Key): the receiver acts on it once.",
    )
    action_item = models.ForeignKey(ActionItem, on_delete=models.PROTECT, related_name="handoff_deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    payload = models.JSONField(help_text="Exactly what is sent: names, references and previews, no secret.")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A worker holds this while its POST is in flight: a second copy of the task waits instead of sending.
    sending_since = models.DateTimeField(null=True, blank=True, editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    dispatched_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    failure_notified_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=8, choices=HandoffOutcome.choices, blank=True)
    outcome_at = models.DateTimeField(null=True, blank=True)
    external_reference = models.CharField(
        max_length=300, blank=True, help_text="The receiver's ticket id or URL, change id, ..."
    )
    outcome_note = models.CharField(max_length=500, blank=True)
    history = HistoricalRecords(excluded_fields=("sending_since",))

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ("-created_at", "-id")
        permissions = (
            ("dispatch_handoff", "Can hand an action item off to a webhook endpoint"),
            ("record_handoff_outcome", "Can record the outcome a signed hand-off callback reports"),
        )
        constraints = (
            # An action item is handed off once at a time: again only after a delivery failed or its
            # receiver reported failure.
            models.UniqueConstraint(
                fields=("action_item",),
                condition=Q(status__in=("pending", "delivered")) & ~Q(outcome="failed"),
                name="delivery_one_live_per_action_item",
            ),
        )
        indexes = (models.Index(fields=("status", "next_attempt_at"), name="delivery_status_next"),)

    def __str__(self) -> str:
        return f"Hand-off {str(self.idempotency_key)[:8]} of action item #{self.action_item_id}"


class DeliveryAttempt(models.Model):
    """One POST, written once. No response body: a receiver could echo anything back."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    succeeded = models.BooleanField()
    error_class = models.CharField(max_length=100, blank=True)
    error_message = models.CharField(max_length=200, blank=True)
    retry_in_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="When the next attempt was scheduled, if any."
    )

    class Meta:
        ordering = ("delivery_id", "number")
        constraints = (
            models.UniqueConstraint(fields=("delivery", "number"), name="delivery_attempt_number"),
        )

    def __str__(self) -> str:
        return f"Attempt {self.number} of delivery #{self.delivery_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("A delivery attempt is a record: it cannot be changed once stored.")
        super().save(*args, **kwargs)
