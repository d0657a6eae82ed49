"""Reads of exposures and findings, scoped to what the user may see.

Staff who see every identity see every exposure, the unattributed ones (the triage queue) included; an
owner sees the exposures of the identities they own, personally or through a team, and nothing else.
"""

from datetime import UTC, datetime

from django.db.models import (
    BooleanField,
    DateTimeField,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from findings.models import (
    AWAITING_ANSWER,
    AttributionRule,
    Exposure,
    ExposureState,
    Finding,
    ImportRun,
    IngestJob,
    PromotionRule,
)
from nhi_inventory.models import NonHumanIdentity
from nhi_inventory.selectors import identity_scope, sees_all_identities
from portal.permissions import Actor


def exposure_list(*, user: Actor) -> QuerySet[Exposure]:
    exposures = Exposure.objects.all()
    if not user.is_authenticated or not user.is_active:
        return exposures.none()
    if sees_all_identities(user):
        return exposures
    return exposures.filter(identity_scope(user, prefix="nhi__"))


def exposure_is_visible(*, exposure: Exposure, user: Actor) -> bool:
    return exposure_list(user=user).filter(pk=exposure.pk).exists()


def exposures_awaiting_answer(*, user: Actor) -> QuerySet[Exposure]:
    """An owner's to-do list: exposures of their identities still waiting for their word."""
    return (
        exposure_list(user=user)
        .filter(state__in=AWAITING_ANSWER, nhi__isnull=False)
        .select_related("nhi", "credential")
        .order_by("-last_seen_at", "-id")
    )


def exposures_owned_awaiting_answer(*, user: Actor) -> QuerySet[Exposure]:
    """The owner page's list: awaiting an answer, of identities the user owns (personally or via a team).

    Narrower than `exposures_awaiting_answer` for staff who see everything: the owner page is their own
    to-do list, not the triage queue of every team.
    """
    return (
        exposures_awaiting_answer(user=user)
        .filter(identity_scope(user, prefix="nhi__"))
        .select_related("nhi__owner_team")
    )


def with_recent_locations(exposures: QuerySet[Exposure], *, limit: int) -> QuerySet[Exposure]:
    """Attach `recent_findings`, the `limit` most recently seen locations of each, in one more query."""
    recent = Finding.objects.order_by("-last_seen_at", "-id")
    return exposures.prefetch_related(
        Prefetch("findings", queryset=recent[:limit], to_attr="recent_findings")
    )


def exposure_is_answerable_by(*, exposure: Exposure, user: Actor) -> bool:
    """Whether the user answers for this exposure at all (its state aside): `exposure_answer`'s own check."""
    if not user.is_authenticated or exposure.nhi_id is None or not user.has_perm("findings.answer_exposure"):
        return False
    return NonHumanIdentity.objects.filter(identity_scope(user), pk=exposure.nhi_id).exists()


def triage_queue(*, user: Actor) -> QuerySet[Exposure]:
    """Exposures that belong to nobody yet, or whose owner said they are not theirs."""
    return exposure_list(user=user).filter(Q(nhi__isnull=True) | Q(state=ExposureState.NOT_OURS))


def finding_list(*, user: Actor) -> QuerySet[Finding]:
    return Finding.objects.filter(exposure__in=exposure_list(user=user))


def import_run_list(*, user: Actor) -> QuerySet[ImportRun]:
    if not user.is_authenticated or not user.is_active or not sees_all_identities(user):
        return ImportRun.objects.none()
    return ImportRun.objects.all()


def _sees_everything(user: Actor) -> bool:
    return bool(user.is_authenticated and user.is_active and sees_all_identities(user))


def attribution_rule_list(*, user: Actor) -> QuerySet[AttributionRule]:
    """The rules name identities of every team: staff who see every identity see them, nobody else."""
    rules = AttributionRule.objects.all()
    return rules if _sees_everything(user) else rules.none()


def promotion_rule_list(*, user: Actor) -> QuerySet[PromotionRule]:
    rules = PromotionRule.objects.all()
    return rules if _sees_everything(user) else rules.none()


def ingest_job_list(*, user: Actor) -> QuerySet[IngestJob]:
    """Staff who see every import see every job; anyone else only the jobs they started."""
    jobs = IngestJob.objects.all()
    if not user.is_authenticated or not user.is_active:
        return jobs.none()
    if sees_all_identities(user):
        return jobs
    return jobs.filter(created_by_id=user.pk)


# --- Owner reminders (findings/reminders.py): the portal's own sweep, so not scoped by user ----------------

_LONG_AGO = Value(datetime(1970, 1, 1, tzinfo=UTC), output_field=DateTimeField())


def exposures_awaiting_owners() -> QuerySet[Exposure]:
    """Exposures awaiting the answer of an identity's owners, where a team answers for that identity.

    Annotated from the exposure's history, which records every change of state and identity:
    - `wait_started_at`: when the current wait began, i.e. the first history row after the latest one in
      which the exposure did not await this identity's owners (unattributed, another identity's, answered,
      remediated). A regression or a hand-over thus starts a new wait.
    - `reminder_counts`: whether its `owner_reminder` row was written during this wait (a row from an
      earlier wait counts nothing: the cadence starts again from zero).
    """
    history = Exposure.history.model.objects.filter(id=OuterRef("pk"))
    not_waiting = history.filter(
        Q(nhi__isnull=True) | ~Q(nhi_id=OuterRef("nhi_id")) | ~Q(state__in=AWAITING_ANSWER)
    )
    wait_broke_at = Subquery(not_waiting.order_by("-history_date").values("history_date")[:1])
    broke_or_long_ago = Coalesce(OuterRef("wait_broke_at"), _LONG_AGO)
    first_since = Subquery(
        history.filter(history_date__gt=broke_or_long_ago).order_by("history_date").values("history_date")[:1]
    )
    return (
        Exposure.objects.filter(state__in=AWAITING_ANSWER, nhi__owner_team__isnull=False)
        .annotate(wait_broke_at=wait_broke_at)
        .annotate(
            # A change recorded in the same instant as the row before it: the wait began in that instant.
            wait_started_at=Coalesce(first_since, "wait_broke_at", "first_seen_at"),
            reminder_counts=Coalesce(
                ExpressionWrapper(
                    Q(owner_reminder__waiting_since__gte=Coalesce(F("wait_broke_at"), _LONG_AGO)),
                    output_field=BooleanField(),
                ),
                Value(False),
            ),
        )
    )


def exposures_due_for_reminder(*, waited_since: datetime) -> QuerySet[Exposure]:
    """Those whose next reminder or escalation is due: their wait, or its last reminder, began at or before
    `waited_since` (now less one interval), and they were not escalated during this wait."""
    return exposures_awaiting_owners().filter(
        Q(reminder_counts=False, wait_started_at__lte=waited_since)
        | Q(reminder_counts=True, owner_reminder__escalated_at__isnull=True)
        & (
            Q(owner_reminder__last_reminded_at__lte=waited_since)
            | Q(
                owner_reminder__last_reminded_at__isnull=True,
                owner_reminder__waiting_since__lte=waited_since,
            )
        )
    )
