"""Every write of the hand-offs: webhook endpoints, dispatching an action item, and what a callback reports.

Sending itself (attempts, backoff, giving up) is in `handoffs.sending`, run by `handoffs.tasks`.
"""

import logging
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from audit.canonical import canonical_json, text_digest
from audit.services import audit_entry_append
from audit.values import audit_changes, audit_fields
from cases.errors import CaseWorkflowError
from cases.models import SETTLED_STATES, ActionItem, ActionStatus, Case
from cases.selectors import action_item_list
from cases.services import action_item_set_status, comment_add
from handoffs import signing
from handoffs.models import (
    DISPATCHABLE_KINDS,
    Delivery,
    DeliveryStatus,
    EndpointKind,
    HandoffOutcome,
    WebhookEndpoint,
)
from handoffs.notifications import outcome_failed_send
from handoffs.selectors import endpoint_for
from handoffs.tasks import deliver_handoff
from handoffs.transport import url_refusal
from nhi_inventory.fingerprints import mask_credentials
from nhi_inventory.models import Credential, CredentialStatus, NonHumanIdentity, Team
from portal.permissions import Actor, require_permission

logger = logging.getLogger(__name__)

ENDPOINT_EDITABLE_FIELDS = frozenset({"name", "url", "team", "action_kind", "is_active"})
# The key itself is derived, never stored, never audited: its version says which one is in force. The URL
# is a digest (a webhook URL may carry a token in its path or query).
ENDPOINT_AUDITED_FIELDS = ("name", "url", "team", "action_kind", "is_active", "key_version")
MAX_CREDENTIALS_IN_PAYLOAD = 50
EXTERNAL_REFERENCE_MAX = Delivery._meta.get_field("external_reference").max_length or 300
OUTCOME_NOTE_MAX = Delivery._meta.get_field("outcome_note").max_length or 500
URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*@", re.IGNORECASE)


# --- Webhook endpoints --------------------------------------------------------------------------------------


def webhook_endpoint_validate(endpoint: WebhookEndpoint) -> None:
    """Raise ValidationError, per field, for what `webhook_endpoint_create` and `_update` would refuse.

    The admin's form calls it too, so a refusal shows on the field instead of an error page."""
    errors: dict[str, str] = {}
    endpoint.name = endpoint.name.strip()
    endpoint.url = endpoint.url.strip()
    if not endpoint.name:
        errors["name"] = "Name the endpoint, e.g. 'Payments Jira'."
    if problem := url_refusal(endpoint.url):
        errors["url"] = problem
    if endpoint.action_kind not in EndpointKind.values:
        errors["action_kind"] = f"Choose one of: {', '.join(v for v in EndpointKind.values if v)} (or none)."
    if endpoint.team_id is None and not endpoint.action_kind:
        errors["action_kind"] = (
            "Choose a team, an action kind or both: an endpoint for everything is not allowed."
        )
    if errors:
        raise ValidationError(errors)
    if endpoint.is_active:
        same_team = Q(team__isnull=True) if endpoint.team_id is None else Q(team_id=endpoint.team_id)
        clash = WebhookEndpoint.objects.filter(same_team, is_active=True, action_kind=endpoint.action_kind)
        if other := clash.exclude(pk=endpoint.pk).select_related("team").first():
            raise ValidationError(
                {"action_kind": f"The active endpoint {other.name} already takes {other.scope} hand-offs."}
            )


def _save_endpoint(endpoint: WebhookEndpoint, *, actor: Actor, reason: str) -> None:
    endpoint._history_user = actor  # type: ignore[attr-defined]
    endpoint._change_reason = reason  # type: ignore[attr-defined]
    try:
        with transaction.atomic():
            endpoint.save()
    except IntegrityError:
        # Two people configuring the same (team, kind) at once: the unique constraint decides.
        raise ValidationError(
            {"action_kind": "Another active endpoint already takes these hand-offs; reload and check."}
        ) from None


@transaction.atomic
def webhook_endpoint_create(
    *,
    actor: Actor,
    name: str,
    url: str,
    team: Team | None = None,
    action_kind: str = "",
    is_active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint, and its signing key to configure the receiver with (shown once; never stored)."""
    actor = require_permission(actor, "handoffs.add_webhookendpoint", to="add webhook endpoints")
    now = timezone.now()
    endpoint = WebhookEndpoint(
        name=name,
        url=url,
        team=team,
        action_kind=action_kind or "",
        is_active=is_active,
        key_rotated_at=now,
        created_by=actor,
        created_at=now,
    )
    webhook_endpoint_validate(endpoint)
    _save_endpoint(endpoint, actor=actor, reason="created")
    audit_entry_append(
        actor=actor,
        event="webhook_endpoint.create",
        target=endpoint,
        after=audit_fields(endpoint, ENDPOINT_AUDITED_FIELDS),
    )
    return endpoint, signing.endpoint_key(endpoint_id=endpoint.pk, key_version=endpoint.key_version)


@transaction.atomic
def webhook_endpoint_update(*, actor: Actor, endpoint_id: int, changes: Mapping[str, Any]) -> WebhookEndpoint:
    """Change an endpoint's name, URL, team, kind or active flag; the signing key stays the same."""
    actor = require_permission(actor, "handoffs.change_webhookendpoint", to="change webhook endpoints")
    unknown = set(changes) - ENDPOINT_EDITABLE_FIELDS
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed here."))
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise ValidationError({"endpoint": f"No webhook endpoint with id {endpoint_id}."})
    before = audit_fields(endpoint, ENDPOINT_AUDITED_FIELDS)
    for name, value in changes.items():
        setattr(endpoint, name, "" if name == "action_kind" and value is None else value)
    webhook_endpoint_validate(endpoint)
    _save_endpoint(endpoint, actor=actor, reason="changed: " + ", ".join(sorted(changes)))
    was, now = audit_changes(before, audit_fields(endpoint, ENDPOINT_AUDITED_FIELDS))
    audit_entry_append(actor=actor, event="webhook_endpoint.update", target=endpoint, before=was, after=now)
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_key(*, actor: Actor, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new signing key (the old one stops working at once), to configure the receiver with."""
    actor = require_permission(actor, "handoffs.change_webhookendpoint", to="rotate webhook signing keys")
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise ValidationError({"endpoint": f"No webhook endpoint with id {endpoint_id}."})
    before = audit_fields(endpoint, ("key_version", "key_rotated_at"))
    endpoint.key_version += 1
    endpoint.key_rotated_at = timezone.now()
    _save_endpoint(endpoint, actor=actor, reason=f"signing key rotated (version {endpoint.key_version})")
    audit_entry_append(
        actor=actor,
        event="webhook_endpoint.rotate_key",
        target=endpoint,
        before=before,
        after=audit_fields(endpoint, ("key_version", "key_rotated_at")),
    )
    return endpoint, signing.endpoint_key(endpoint_id=endpoint.pk, key_version=endpoint.key_version)


# --- Dispatch -----------------------------------------------------------------------------------------------


def _absolute(path: str) -> str:
    return f"{settings.PORTAL_BASE_URL}{path}"


def handoff_payload(*, item: ActionItem, idempotency_key: str, dispatched_by: str) -> dict[str, Any]:
    """What the receiver gets: names, references and previews. No secret is ever in it (the portal holds
    none) and free text is masked like an assistant's, in case someone typed a key into a title."""
    case: Case = item.case
    identities = list(NonHumanIdentity.objects.filter(case_links__case=case).order_by("name", "pk"))
    credentials = list(
        Credential.objects.filter(nhi__in=identities)
        .exclude(status=CredentialStatus.REVOKED)
        .select_related("nhi")
        .order_by("nhi__name", "pk")[:MAX_CREDENTIALS_IN_PAYLOAD]
    )
    team = item.owning_team
    return {
        "event": "action_item.handoff",
        "idempotency_key": idempotency_key,
        "dispatched_at": timezone.now().isoformat(),
        "dispatched_by": dispatched_by,
        "case": {
            "id": case.pk,
            "reference": case.reference,
            "title": mask_credentials(case.title),
            "kind": case.kind,
            "severity": case.get_severity_display().lower(),
            "priority": f"P{case.priority}",
            "state": case.state,
            "due_at": case.due_at.isoformat() if case.due_at else None,
            "url": _absolute(reverse("admin:cases_case_change", args=(case.pk,))),
        },
        "action_item": {
            "id": item.pk,
            "kind": item.kind,
            "description": mask_credentials(item.title),
        },
        "team": {"id": team.pk, "name": team.name, "slug": team.slug, "contact_email": team.contact_email},
        "identities": [
            {
                "id": nhi.pk,
                "name": nhi.name,
                "kind": nhi.kind,
                "provider": nhi.provider,
                "environment": nhi.environment,
            }
            for nhi in identities
        ],
        # Credentials by preview only (a few leading characters and the length): enough to find the key to
        # revoke in the receiving system, useless to anyone who reads the payload.
        "credentials": [
            {
                "id": credential.pk,
                "identity": credential.nhi.name,
                "type": credential.credential_type,
                "label": mask_credentials(credential.label),
                "preview": credential.preview,
                "status": credential.status,
            }
            for credential in credentials
        ],
        "callback": {
            "url": _absolute(reverse("api-handoff-callback")),
            "outcomes": [HandoffOutcome.DONE.value, HandoffOutcome.FAILED.value],
        },
    }


@transaction.atomic
def handoff_dispatch(*, actor: Actor, action_item_id: int) -> Delivery:
    """Hand an approved ticket, containment or revocation action item off to its webhook endpoint.

    Creates the delivery (the payload as it will be sent, a fresh idempotency key), moves the item to in
    progress, notes it on the case, and sends it from a background task once this transaction commits.
    """
    actor = require_permission(actor, "handoffs.dispatch_handoff", to="hand action items off")
    item = (
        ActionItem.objects.select_for_update(of=("self",))
        .select_related("case", "owning_team")
        .filter(pk=action_item_id)
        .first()
    )
    if item is None:
        raise ValidationError({"action_item": f"No action item with id {action_item_id}."})
    if not action_item_list(user=actor).filter(pk=item.pk).exists():
        raise PermissionDenied(f"{actor} may not hand off this action item: it belongs to another team.")
    if item.kind not in DISPATCHABLE_KINDS:
        kinds = ", ".join(str(kind.label).lower() for kind in DISPATCHABLE_KINDS)
        raise ValidationError(
            {
                "action_item": f"Only {kinds} action items are handed off; "
                f"this one is a {item.get_kind_display().lower()}."
            }
        )
    if item.awaiting_approval:
        raise ValidationError(
            {
                "action_item": "This action item is a proposal nobody has approved yet: a person with the "
                "approver role, other than whoever proposed it, must approve it before it is handed off."
            }
        )
    if item.status in (ActionStatus.DONE, ActionStatus.CANCELLED):
        raise CaseWorkflowError(
            f"This action item is {item.get_status_display().lower()}; there is nothing to hand off."
        )
    if item.case.state in SETTLED_STATES:
        raise CaseWorkflowError(
            f"{item.case.reference} is {item.case.get_state_display().lower()}; "
            "reopen it before you hand its work off."
        )
    live = (
        Delivery.objects.filter(
            action_item=item, status__in=(DeliveryStatus.PENDING, DeliveryStatus.DELIVERED)
        )
        .exclude(outcome=HandoffOutcome.FAILED)
        .select_related("endpoint")
        .first()
    )
    if live is not None:
        raise CaseWorkflowError(
            f"This action item was already handed off to {live.endpoint.name} "
            f"({live.get_status_display().lower()}, {live.created_at:%Y-%m-%d %H:%M}); it goes again only if "
            "that delivery fails or its receiver reports failure."
        )
    endpoint = endpoint_for(action_item=item)
    if endpoint is None:
        raise ValidationError(
            {
                "action_item": f"No active webhook endpoint takes {item.get_kind_display().lower()} "
                f"hand-offs of {item.owning_team.name}: add one in the admin "
                "(Downstream hand-offs → Webhook endpoints)."
            }
        )
    if problem := url_refusal(endpoint.url):
        raise ValidationError({"action_item": f"The endpoint {endpoint.name} cannot be used: {problem}"})
    now = timezone.now()
    delivery = Delivery(
        action_item=item, endpoint=endpoint, dispatched_by=actor, created_at=now, next_attempt_at=now
    )
    delivery.payload = handoff_payload(
        item=item, idempotency_key=str(delivery.idempotency_key), dispatched_by=actor.get_username()
    )
    delivery._history_user = actor  # type: ignore[attr-defined]
    delivery._change_reason = f"dispatched to {endpoint.name}"  # type: ignore[attr-defined]
    delivery.save()
    audit_entry_append(
        actor=actor,
        event="handoff.dispatch",
        target=delivery,
        case_id=item.case_id,
        after={
            **audit_fields(delivery, ("action_item", "endpoint", "status")),
            # What was sent, provable against the stored payload without copying names into the chain.
            "payload": text_digest(canonical_json(delivery.payload)),
        },
    )
    if item.status == ActionStatus.OPEN:
        action_item_set_status(actor=actor, action_item_id=item.pk, status=ActionStatus.IN_PROGRESS)
    comment_add(
        actor=actor,
        case_id=item.case_id,
        body=(
            f'{item.get_kind_display()} "{item.title}" handed off to {endpoint.name} '
            f"(idempotency key {delivery.idempotency_key})."
        ),
    )
    delivery_id = delivery.pk
    transaction.on_commit(lambda: deliver_handoff.delay(delivery_id, 1))
    return delivery


# --- Callbacks ----------------------------------------------------------------------------------------------


# The receiver's reference and note are its free text: digests.
DELIVERY_OUTCOME_FIELDS = ("outcome", "outcome_at", "status", "external_reference", "outcome_note")


class CallbackAlreadyRecorded(PermissionDenied):
    """A second callback for one delivery (a replay, or a receiver changing its mind): refused, 403."""


def _clean_reference(reference: str) -> str:
    reference = " ".join(reference.split())
    if len(reference) > EXTERNAL_REFERENCE_MAX:
        raise ValidationError({"external_reference": f"At most {EXTERNAL_REFERENCE_MAX} characters."})
    # A URL keeps its path and query (a ticket link needs them) but never user-info.
    return URL_USERINFO.sub(r"\1", reference)


@transaction.atomic
def handoff_callback_record(
    *, actor: Actor, delivery_id: int, outcome: str, external_reference: str = "", note: str = ""
) -> Delivery:
    """Record what the receiver reports: the action item is done (with its ticket or change reference), or
    failed (it goes back to open). Once per delivery: a second callback is refused and changes nothing.

    Called for a callback whose signature `handoffs.api.authentication` verified, as the hand-offs' account.
    """
    actor = require_permission(actor, "handoffs.record_handoff_outcome", to="record hand-off outcomes")
    delivery = (
        Delivery.objects.select_for_update(of=("self",))
        .select_related("endpoint", "action_item__case")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        raise ValidationError({"idempotency_key": "No such hand-off."})
    if delivery.outcome:
        raise CallbackAlreadyRecorded(
            f"This hand-off's outcome ({delivery.get_outcome_display().lower()}) was already recorded at "
            f"{delivery.outcome_at:%Y-%m-%d %H:%M:%S} UTC; a callback is accepted once. Nothing was changed."
        )
    if outcome not in (HandoffOutcome.DONE, HandoffOutcome.FAILED):
        raise ValidationError({"status": "Choose done or failed."})
    reference = _clean_reference(external_reference)
    if outcome == HandoffOutcome.DONE and not reference:
        raise ValidationError(
            {"external_reference": "Say where the work was done: a ticket id or URL, a change id, ..."}
        )
    note = mask_credentials(" ".join(note.split()))[:OUTCOME_NOTE_MAX]
    before = audit_fields(delivery, DELIVERY_OUTCOME_FIELDS)
    now = timezone.now()
    delivery.outcome = outcome
    delivery.outcome_at = now
    delivery.external_reference = reference
    delivery.outcome_note = note
    if delivery.status == DeliveryStatus.PENDING:
        # It called back, so it has the hand-off, whatever the attempt in flight will record.
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    delivery._history_user = actor  # type: ignore[attr-defined]
    delivery._change_reason = (  # type: ignore[attr-defined]
        f"receiver reported {outcome}" + (f": {reference}" if reference else "")
    )
    delivery.save()
    audit_entry_append(
        actor=actor,
        event="handoff.callback",
        target=delivery,
        case_id=delivery.action_item.case_id,
        before=before,
        after=audit_fields(delivery, DELIVERY_OUTCOME_FIELDS),
        details={"endpoint": delivery.endpoint_id, "action_item": delivery.action_item_id},
    )

    item = delivery.action_item
    case = item.case
    item_note = ""
    if case.state in SETTLED_STATES or item.status in (ActionStatus.DONE, ActionStatus.CANCELLED):
        item_note = (
            f" The action item was left {item.get_status_display().lower()} "
            f"({case.reference} is {case.get_state_display().lower()})."
        )
    elif outcome == HandoffOutcome.DONE:
        action_item_set_status(
            actor=actor, action_item_id=item.pk, status=ActionStatus.DONE, external_reference=reference
        )
    else:
        action_item_set_status(
            actor=actor,
            action_item_id=item.pk,
            status=ActionStatus.OPEN,
            external_reference=reference or None,
        )
        item_note = " The action item is open again."
    said = f" Receiver's note: {note}" if note else ""
    where = f", reference {reference}" if reference else ""
    comment_add(
        actor=actor,
        case_id=case.pk,
        body=(
            f'{delivery.endpoint.name} reports {item.get_kind_display().lower()} "{item.title}" '
            f"{outcome}{where}.{item_note}{said}"
        ),
    )
    if outcome == HandoffOutcome.FAILED:
        transaction.on_commit(lambda: outcome_failed_send(delivery_id=delivery.pk))
    item.refresh_from_db(fields=["status", "external_reference"])
    return delivery
