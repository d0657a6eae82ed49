"""When an exposure stops being a tracked finding and becomes (part of) a case.

The guidance: a finding is promoted into a workflow when it exposes a secret that is valid or of unknown
validity, belongs to a service account, or recurs; low-risk findings stay tracked without a case. The
rules are rows (PromotionRule), tried in order; the first that matches says why, and that sentence is
kept on the exposure, in its history and in the case's comment.

Exposures of one identity share one open secret-exposure case: a new one joins it rather than opening
another. An exposure that belongs to nobody yet opens its own case only under a rule that does not wait
for attribution (a live secret does not wait); otherwise it waits in the triage queue.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from cases.models import OPEN_STATES, Case, CaseKind, CaseOrigin, Severity
from cases.services import case_link_identity, case_open, comment_add
from findings.bulk import one_of
from findings.models import Exposure, ExposureState, Finding, PromotionCondition, PromotionRule
from nhi_inventory.models import NHIKind, NonHumanIdentity

# The guidance's rule as default rows (also created by migration 0002). Only a live secret does not wait
# for attribution: scanners without verification report every secret as of unknown validity, and an
# exposure nobody owns yet belongs in the triage queue first.
DEFAULT_RULES = (
    # position, condition, requires_attribution, severity
    (10, PromotionCondition.VALID, False, Severity.CRITICAL),
    (20, PromotionCondition.SERVICE_ACCOUNT, True, Severity.HIGH),
    (30, PromotionCondition.RECURRING, True, Severity.HIGH),
    (40, PromotionCondition.UNKNOWN_VALIDITY, True, Severity.MEDIUM),
)

# Answers that take an exposure out of the workflow: nothing to promote.
NOT_PROMOTABLE = (ExposureState.NOT_OURS, ExposureState.FALSE_POSITIVE, ExposureState.REMEDIATED)


@dataclass(frozen=True)
class Placed:
    exposure: Exposure
    reason: str
    severity: int


@dataclass
class Promotion:
    opened: list[int] = field(default_factory=list)
    joined: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    awaiting_triage: int = 0


def promotion_rules_ensure_defaults() -> int:
    """Create the default rules on a database that has none (after a flush); returns how many."""
    if PromotionRule.objects.exists():
        return 0
    PromotionRule.objects.bulk_create(
        PromotionRule(position=position, condition=condition, requires_attribution=waits, severity=severity)
        for position, condition, waits, severity in DEFAULT_RULES
    )
    return len(DEFAULT_RULES)


def _matches(rule: PromotionRule, exposure: Exposure) -> bool:
    attributed = exposure.nhi_id is not None and exposure.state != ExposureState.NOT_OURS
    if rule.requires_attribution and not attributed:
        return False
    if rule.condition == PromotionCondition.VALID:
        return exposure.validity == "valid"
    if rule.condition == PromotionCondition.UNKNOWN_VALIDITY:
        return exposure.validity == "unknown"
    if rule.condition == PromotionCondition.SERVICE_ACCOUNT:
        return attributed and exposure.nhi is not None and exposure.nhi.kind == NHIKind.SERVICE_ACCOUNT
    if rule.condition == PromotionCondition.RECURRING:
        return exposure.regressions > 0 or exposure.locations >= rule.min_locations
    return False


def _rule_q(rule: PromotionRule) -> Q:
    """The rows `_matches(rule, ...)` accepts, as a filter."""
    attributed = Q(nhi__isnull=False) & ~Q(state=ExposureState.NOT_OURS)
    if rule.condition == PromotionCondition.VALID:
        condition = Q(validity="valid")
    elif rule.condition == PromotionCondition.UNKNOWN_VALIDITY:
        condition = Q(validity="unknown")
    elif rule.condition == PromotionCondition.SERVICE_ACCOUNT:
        condition = attributed & Q(nhi__kind=NHIKind.SERVICE_ACCOUNT)
    elif rule.condition == PromotionCondition.RECURRING:
        condition = Q(regressions__gt=0) | Q(locations__gte=rule.min_locations)
    else:
        return Q(pk__in=[])
    return condition & attributed if rule.requires_attribution else condition


def _any_rule_q(rules: list[PromotionRule]) -> Q:
    found = Q(pk__in=[])
    for rule in rules:
        found |= _rule_q(rule)
    return found


def reason_for(rule: PromotionRule, exposure: Exposure) -> str:
    if rule.condition == PromotionCondition.RECURRING:
        if exposure.regressions:
            return f"It recurs: seen again after remediation ({exposure.regressions} time(s))."
        return f"It recurs: found in {exposure.locations} places (rule: {rule.min_locations} or more)."
    return f"{rule.get_condition_display()}."


def _first_match(rules: list[PromotionRule], exposure: Exposure) -> PromotionRule | None:
    if exposure.state == ExposureState.REGRESSED:
        # Of all the reasons that may apply, the recurrence is the one the case must hear about.
        rules = sorted(rules, key=lambda rule: rule.condition != PromotionCondition.RECURRING)
    return next((rule for rule in rules if _matches(rule, exposure)), None)


def exposures_promote(
    *, actor: User, exposure_ids: set[int] | list[int], forced_reason: str | None = None
) -> Promotion:
    """Open or join cases for the exposures the rules promote. Called inside the caller's transaction.

    With `forced_reason` (an owner confirmed it), the exposures are promoted whatever the rules say.
    """
    result = Promotion()
    rules = list(PromotionRule.objects.filter(is_active=True).order_by("position", "id"))
    if not (rules or forced_reason):
        return result
    pending = Exposure.objects.filter(one_of("pk", exposure_ids)).exclude(state__in=NOT_PROMOTABLE)
    pending = pending.filter(
        Q(state=ExposureState.REGRESSED) | Q(case__isnull=True) | ~Q(case__state__in=OPEN_STATES)
    )
    if forced_reason is None:
        # A secret already resolved at its source everywhere it was found (GitHub: revoked, or closed as
        # a false positive there) is tracked, not promoted.
        pending = pending.filter(
            Exists(Finding.objects.filter(exposure_id=OuterRef("pk"), resolved_at_source=False))
        )
        # Most candidates of a big import match no rule (they wait in triage): count those in SQL
        # and load only the ones some rule may promote.
        may_match = _any_rule_q(rules)
        result.awaiting_triage = pending.filter(nhi__isnull=True).exclude(may_match).count()
        pending = pending.filter(may_match)
    by_target = _targets(
        list(pending.select_related("nhi", "case").order_by("pk")), rules, forced_reason, result
    )
    if by_target:
        _place(actor=actor, by_target=by_target, result=result)
    return result


Target = tuple[str, int]  # ("identity", nhi id) or ("exposure", exposure id)


def _targets(
    exposures: list[Exposure], rules: list[PromotionRule], forced_reason: str | None, result: Promotion
) -> dict[Target, list[Placed]]:
    """The promoted exposures, grouped by the case they go to: their identity's, or their own."""
    by_target: dict[Target, list[Placed]] = defaultdict(list)
    for exposure in exposures:
        if forced_reason is not None:
            placed = Placed(exposure, forced_reason, Severity.HIGH)
        else:
            rule = _first_match(rules, exposure)
            if rule is None:
                result.awaiting_triage += exposure.nhi_id is None
                continue
            placed = Placed(exposure, reason_for(rule, exposure), rule.severity)
        target = ("identity", exposure.nhi_id) if exposure.nhi_id else ("exposure", exposure.pk)
        by_target[target].append(placed)
    return by_target


def _open_cases_of(identity_ids: list[int]) -> dict[int, int]:
    """The oldest open secret-exposure case of each identity that has one."""
    open_cases: dict[int, int] = {}
    for nhi_id, case_id in (
        Case.objects.filter(
            kind=CaseKind.SECRET_EXPOSURE, state__in=OPEN_STATES, exposures__nhi_id__in=identity_ids
        )
        .order_by("pk")
        .values_list("exposures__nhi_id", "pk")
    ):
        open_cases.setdefault(nhi_id, case_id)
    return open_cases


def _place(*, actor: User, by_target: dict[Target, list[Placed]], result: Promotion) -> None:
    open_cases = _open_cases_of([key for kind, key in by_target if kind == "identity"])
    for (kind, key), members in by_target.items():
        case_id = open_cases.get(key) if kind == "identity" else None
        nhi = members[0].exposure.nhi
        if case_id is None:
            case_id = _open_case(actor=actor, members=members, nhi=nhi)
            result.opened.append(case_id)
        else:
            result.joined[case_id].extend(placed.exposure.pk for placed in members)
            if nhi is not None:
                case_link_identity(actor=actor, case_id=case_id, nhi_id=nhi.pk)
            comment_add(actor=actor, case_id=case_id, body=_joined_comment(members))
        for placed in members:
            placed.exposure.case_id = case_id
            placed.exposure.promotion_reason = placed.reason[:255]
            placed.exposure._change_reason = f"promoted to a case: {placed.reason}"[:100]  # type: ignore[attr-defined]
    promoted = [placed.exposure for members in by_target.values() for placed in members]
    Exposure.objects.bulk_update(promoted, ["case", "promotion_reason"])
    Exposure.history.bulk_history_create(
        promoted, update=True, default_user=actor, default_date=timezone.now()
    )


def exposure_leave_case(*, actor: User, exposure: Exposure, reason: str) -> None:
    """Take an exposure out of its case (the caller saves it), saying so on the case while it is open."""
    case = exposure.case
    if case is None:
        return
    if case.state in OPEN_STATES:
        comment_add(actor=actor, case_id=case.pk, body=f"{exposure.preview} left this case: {reason}.")
    exposure.case, exposure.promotion_reason = None, ""


def _open_case(*, actor: User, members: list[Placed], nhi: NonHumanIdentity | None) -> int:
    detectors = sorted({placed.exposure.detector for placed in members})
    subject = nhi.name if nhi is not None else "an unattributed identity"
    title = f"Leaked {', '.join(detectors)[:80]} secret{'s' if len(members) > 1 else ''} of {subject}"
    lines = [f"{placed.exposure.preview}: {placed.reason}" for placed in members[:20]]
    if len(members) > 20:
        lines.append(f"... and {len(members) - 20} more exposures.")
    case = case_open(
        actor=actor,
        title=title[:200],
        kind=CaseKind.SECRET_EXPOSURE,
        severity=max(placed.severity for placed in members),
        summary="Opened from secrets findings:\n" + "\n".join(lines),
        origin=CaseOrigin.SCANNER,
        identities=[nhi] if nhi is not None else [],
        owning_team=nhi.owner_team if nhi is not None else None,
    )
    return case.pk


def _joined_comment(members: list[Placed]) -> str:
    lines = [f"- {placed.exposure.preview}: {placed.reason}" for placed in members[:20]]
    if len(members) > 20:
        lines.append(f"... and {len(members) - 20} more.")
    return f"{len(members)} exposure(s) joined this case:\n" + "\n".join(lines)
