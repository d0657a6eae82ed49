"""Every write to secrets findings: imports, owners' answers, attribution and the rules behind them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from contextlib import closing
from datetime import datetime
from typing import IO, Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from audit.canonical import text_digest
from audit.services import audit_entry_append
from audit.values import audit_changes, audit_fields
from cases.models import OPEN_STATES, CaseState
from cases.services import case_confirm, comment_add
from findings.bulk import one_of
from findings.ingest import Attributor, BatchWriter, Outcome, SealingPipeline
from findings.links import AnswerLinkRefused, Refusal, answer_link_verify
from findings.models import (
    AWAITING_ANSWER,
    AnswerLink,
    Attribution,
    AttributionRule,
    Exposure,
    ExposureState,
    Finding,
    ImportRun,
    PromotionRule,
    ReportFormat,
)
from findings.parsers import PARSERS, ReportFormatError
from findings.promotion import exposure_leave_case, exposures_promote
from findings.selectors import exposure_is_answerable_by
from findings.tasks import notify_owners
from nhi_inventory.models import CredentialStatus, NonHumanIdentity
from nhi_inventory.services import credential_set_status
from portal.permissions import Actor, require_permission
from portal.roles import automation_user

PROMOTION_CHUNK = 10_000

logger = logging.getLogger(__name__)


# --- Import -------------------------------------------------------------------------------------------------


@transaction.atomic
def findings_import(
    *,
    actor: Actor,
    report_format: str,
    source: str,
    stream: IO[bytes],
    file_name: str = "",
    on_progress: Callable[[int], None] | None = None,
) -> ImportRun:
    """Import one scanner report, whole or not at all. Raises ValidationError naming what is wrong.

    `on_progress(entries)` is called after each batch with the number of entries read so far. It runs
    inside the import's transaction: what it writes to the database is seen by nobody until the end.
    """
    user = require_permission(actor, "findings.import_findings", to="import scanner reports")
    parser = PARSERS.get(report_format)
    if parser is None:
        raise ValidationError(
            {
                "report_format": f"Unknown format {report_format!r}; "
                f"use one of {', '.join(ReportFormat.values)}."
            }
        )
    if not source.strip():
        raise ValidationError({"source": "Name the source of the report (e.g. the repository it scanned)."})
    now = timezone.now()
    run = ImportRun.objects.create(
        report_format=report_format,
        source=source.strip()[:200],
        file_name=file_name[:255],
        file_sha256="0" * 64,
        file_size=0,
        imported_by=user,
        started_at=now,
        finished_at=now,
    )
    outcome = Outcome()
    writer = BatchWriter(run=run, actor=user, source=run.source, now=now, outcome=outcome)
    # Parsing and sealing run in a child process (raw secrets stay there), the writes here, side by side.
    pipeline = SealingPipeline(parser, stream, source=run.source)
    try:
        with closing(pipeline.sealed()) as sealed_batches:  # closed at once on error: the child is stopped
            for batch in sealed_batches:
                writer.write(batch)
                if on_progress is not None:
                    on_progress(outcome.entries)
        writer.finish()
    except ReportFormatError as error:
        # No chained cause: the parser's own exception may quote the input.
        raise ValidationError(
            {"report": f"{file_name or 'The report'} is not a valid {report_format} report: {error}"}
        ) from None
    candidates = sorted(outcome.candidates)
    for start in range(0, len(candidates), PROMOTION_CHUNK):
        chunk = candidates[start : start + PROMOTION_CHUNK]
        promotion = exposures_promote(actor=user, exposure_ids=chunk)
        _notify_owners_on_commit(chunk)
        outcome.cases_opened += len(promotion.opened)
        outcome.cases_joined += len(promotion.joined)
        outcome.triage += promotion.awaiting_triage
    if pipeline.digest is None:  # pragma: no cover (set once the whole report was read)
        raise RuntimeError("The report was not read to its end.")
    run.file_sha256, run.file_size = pipeline.digest
    run.finished_at = timezone.now()
    run.summary = outcome.as_dict()
    run.save(update_fields=["file_sha256", "file_size", "finished_at", "summary"])
    # One entry per report, never per finding: the import stays a fixed number of statements per batch.
    audit_entry_append(
        actor=user,
        event="findings.import",
        target=run,
        after={
            **audit_fields(
                run,
                ("report_format", "source", "file_name", "file_sha256", "file_size"),
                verbatim=("file_sha256",),
            ),
            "counts": {name: value for name, value in run.summary.items() if isinstance(value, int)},
        },
    )
    # Counts and names only: nothing from inside the report reaches the log.
    logger.info(
        "%s: %s report from %r by %s: %s", run, report_format, run.source, user, json.dumps(run.summary)
    )
    return run


def _notify_owners_on_commit(exposure_ids: list[int]) -> None:
    """Once the import has committed, email the owners of those exposures that now await their answer."""
    awaiting = list(
        Exposure.objects.filter(one_of("pk", exposure_ids), state__in=AWAITING_ANSWER, nhi__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if awaiting:
        transaction.on_commit(lambda: notify_owners.delay(awaiting))


# --- Owners' answers ----------------------------------------------------------------------------------------


# The owner's answer as the chain holds it: the suggested owner and the note are free text, so digests.
EXPOSURE_ANSWER_FIELDS = (
    "state",
    "answered_by",
    "answered_at",
    "answer_note",
    "suggested_owner",
    "remediated_at",
)


class Answer:
    CONFIRM = "confirm"
    NOT_OURS = "not_ours"
    FALSE_POSITIVE = "false_positive"
    REMEDIATED = "remediated"
    CHOICES = (
        (CONFIRM, "Ours, and real"),
        (NOT_OURS, "Not ours"),
        (FALSE_POSITIVE, "False positive"),
        (REMEDIATED, "Already rotated or revoked"),
    )


def _lock_exposure(exposure_id: int) -> Exposure:
    exposure = Exposure.objects.select_for_update().filter(pk=exposure_id).first()
    if exposure is None:
        raise ValidationError({"exposure": f"No exposure with id {exposure_id}."})
    return exposure


def _require_owner(user: User, exposure: Exposure) -> None:
    """Only the people who own the identity answer for it: its owner, or a member of its owning team."""
    if not exposure_is_answerable_by(exposure=exposure, user=user):
        raise PermissionDenied(
            f"{user} may not answer for exposure #{exposure.pk}: it is not one of their identities."
        )


def _save(instance: Model, *, actor: User, reason: str) -> None:
    instance._history_user = actor  # type: ignore[attr-defined]
    instance._change_reason = reason[:100]  # type: ignore[attr-defined]
    instance.save()


@transaction.atomic
def exposure_answer(
    *,
    actor: Actor,
    exposure_id: int,
    answer: str,
    note: str = "",
    suggested_owner: str = "",
    remediation: str = "",
    remediated_at: datetime | None = None,
) -> Exposure:
    """An owner's word on an exposure: it moves the exposure, and updates or opens its case."""
    user = require_permission(actor, "findings.answer_exposure", to="answer for exposures")
    exposure = _lock_exposure(exposure_id)
    _require_owner(user, exposure)
    if not exposure.awaits_answer and not (
        answer == Answer.REMEDIATED and exposure.state == ExposureState.CONFIRMED
    ):
        who = f" by {exposure.answered_by}" if exposure.answered_by_id else ""
        raise ValidationError(
            {
                "answer": f"Exposure #{exposure.pk} was already answered{who}: "
                f"it is {exposure.get_state_display().lower()}."
            }
        )
    note = note.strip()
    before = audit_fields(exposure, EXPOSURE_ANSWER_FIELDS)
    if answer == Answer.CONFIRM:
        exposure.confirm()
        summary = "confirmed: ours, and real"
    elif answer == Answer.NOT_OURS:
        if not suggested_owner.strip():
            raise ValidationError(
                {"suggested_owner": "Say whose it is (a team or a person), so it can be handed on."}
            )
        exposure.dispute()
        exposure.suggested_owner = suggested_owner.strip()[:200]
        summary = f"not ours; suggested owner: {exposure.suggested_owner}"
    elif answer == Answer.FALSE_POSITIVE:
        if not note:
            raise ValidationError({"note": "Say why it is a false positive."})
        exposure.mark_false_positive()
        summary = "false positive"
    elif answer == Answer.REMEDIATED:
        if remediation not in (CredentialStatus.ROTATED, CredentialStatus.REVOKED):
            raise ValidationError({"remediation": "Say whether the secret was rotated or revoked."})
        if remediated_at is None:
            raise ValidationError({"remediated_at": "Say when the secret was rotated or revoked."})
        if remediated_at > timezone.now():
            raise ValidationError({"remediated_at": "The rotation or revocation date is in the future."})
        exposure.mark_remediated()
        exposure.remediated_at = remediated_at
        summary = f"already {remediation} on {remediated_at:%Y-%m-%d %H:%M %Z}"
    else:
        raise ValidationError(
            {"answer": f"{answer!r} is not an answer; use one of {', '.join(a for a, _ in Answer.CHOICES)}."}
        )
    exposure.answered_by, exposure.answered_at, exposure.answer_note = user, timezone.now(), note
    _save(exposure, actor=user, reason=f"owner answer: {summary}")
    audit_entry_append(
        actor=user,
        event="exposure.answer",
        target=exposure,
        case_id=exposure.case_id,
        before=before,
        after=audit_fields(exposure, EXPOSURE_ANSWER_FIELDS),
        details={"answer": answer, "remediation": remediation or None, "credential": exposure.credential_id},
    )
    _answer_reaches_case(exposure, owner=user, answer=answer, summary=summary, remediation=remediation)
    return exposure


def _answer_reaches_case(
    exposure: Exposure, *, owner: User, answer: str, summary: str, remediation: str
) -> None:
    """The case side of an answer, done by the portal's own account on the owner's word."""
    portal = automation_user()
    if answer == Answer.REMEDIATED and exposure.credential_id is not None:
        credential_set_status(
            actor=portal,
            credential_id=exposure.credential_id,
            status=remediation,
            reason=f"{owner}: {summary}",
        )
    case = exposure.case
    if case is None or case.state not in OPEN_STATES:
        if answer == Answer.CONFIRM:
            exposures_promote(
                actor=portal, exposure_ids=[exposure.pk], forced_reason=f"Confirmed by its owner {owner}."
            )
        return
    body = f"{owner} answered for {exposure.preview}: {summary}."
    if exposure.answer_note:
        body += f"\n{exposure.answer_note}"
    comment_add(actor=portal, case_id=case.pk, body=body)
    if answer == Answer.CONFIRM and case.state == CaseState.IDENTIFIED:
        case_confirm(case_id=case.pk, actor=portal, reason=f"Confirmed by {owner}, owner of the identity.")


@transaction.atomic
def answer_link_answer(
    *,
    token: str,
    exposure_id: int,
    answer: str,
    note: str = "",
    suggested_owner: str = "",
    remediation: str = "",
    remediated_at: datetime | None = None,
) -> Exposure:
    """Answer through a link, as the owner it was sent to, and spend the link, both or neither.

    Raises AnswerLinkRefused, or exposure_answer's PermissionDenied (the owner left the team) and
    ValidationError (a missing reason: the link stays unused, so the owner can correct and resend).
    """
    link = answer_link_verify(token=token, exposure_id=exposure_id, lock=True)
    exposure = exposure_answer(
        actor=link.user,
        exposure_id=exposure_id,
        answer=answer,
        note=note,
        suggested_owner=suggested_owner,
        remediation=remediation,
        remediated_at=remediated_at,
    )
    # Conditional, because SQLite ignores the row lock: of two racing requests only one spends the link,
    # and the other's answer is rolled back with this exception.
    spent = AnswerLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=timezone.now())
    if not spent:
        raise AnswerLinkRefused(Refusal.USED)
    return exposure


# --- Attribution --------------------------------------------------------------------------------------------


@transaction.atomic
def exposure_attribute(*, actor: Actor, exposure_id: int, nhi_id: int, note: str = "") -> Exposure:
    """An analyst says whose an exposure is; a disputed one goes to the new owner to answer."""
    user = require_permission(actor, "findings.attribute_exposure", to="attribute exposures")
    exposure = _lock_exposure(exposure_id)
    nhi = NonHumanIdentity.objects.filter(pk=nhi_id).first()
    if nhi is None:
        raise ValidationError({"nhi": f"No identity with id {nhi_id}."})
    before = audit_fields(exposure, EXPOSURE_ATTRIBUTION_FIELDS)
    if exposure.nhi_id != nhi.pk:
        if exposure.state in (ExposureState.NOT_OURS, ExposureState.CONFIRMED, ExposureState.FALSE_POSITIVE):
            exposure.reassign()
            exposure.answered_by, exposure.answered_at, exposure.answer_note = None, None, ""
            exposure.suggested_owner = ""
        # Its case is the previous identity's (or nobody's): it goes where the new identity's exposures are.
        exposure_leave_case(actor=user, exposure=exposure, reason=f"given to {nhi} by {user}")
    exposure.nhi, exposure.attribution, exposure.attribution_rule = nhi, Attribution.ANALYST, None
    if exposure.credential is not None and exposure.credential.nhi_id != nhi.pk:
        exposure.credential = None
    _save(exposure, actor=user, reason=f"attributed to {nhi}" + (f": {note}" if note else ""))
    audit_entry_append(
        actor=user,
        event="exposure.attribute",
        target=exposure,
        # The case it leaves, if any; else the one it is in.
        case_id=before["case"] if before["case"] is not None else exposure.case_id,
        before=before,
        after=audit_fields(exposure, EXPOSURE_ATTRIBUTION_FIELDS),
        details={"note": text_digest(note)},
    )
    exposures_promote(actor=user, exposure_ids=[exposure.pk])
    return exposure


EXPOSURE_ATTRIBUTION_FIELDS = ("nhi", "attribution", "attribution_rule", "state", "credential", "case")


_RULE_FIELDS = (
    "position",
    "repository_pattern",
    "path_pattern",
    "detector_pattern",
    "nhi",
    "is_active",
    "note",
)


def _reject_unknown(values: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = set(values) - set(allowed)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), f"Not a field of {what}."))


def _validated(instance: Model, *, actor: User, reason: str) -> None:
    instance.full_clean()
    _save(instance, actor=actor, reason=reason)


# Globs are configuration, kept verbatim so an auditor reads what the rule matched; the note is free text.
_RULE_PATTERNS = ("repository_pattern", "path_pattern", "detector_pattern")


@transaction.atomic
def attribution_rule_create(*, actor: Actor, fields: Mapping[str, Any]) -> AttributionRule:
    user = require_permission(actor, "findings.add_attributionrule", to="create attribution rules")
    _reject_unknown(fields, _RULE_FIELDS, "attribution rules")
    return _attribution_rule_saved(
        AttributionRule(**fields), actor=user, reason="created", event="attribution_rule.create", before=None
    )


@transaction.atomic
def attribution_rule_update(*, actor: Actor, rule_id: int, changes: Mapping[str, Any]) -> AttributionRule:
    user = require_permission(actor, "findings.change_attributionrule", to="change attribution rules")
    rule = AttributionRule.objects.select_for_update().get(pk=rule_id)
    _reject_unknown(changes, _RULE_FIELDS, "attribution rules")
    before = audit_fields(rule, _RULE_FIELDS, verbatim=_RULE_PATTERNS)
    for name, value in changes.items():
        setattr(rule, name, value)
    return _attribution_rule_saved(
        rule,
        actor=user,
        reason="changed: " + ", ".join(sorted(changes)),
        event="attribution_rule.update",
        before=before,
    )


def _attribution_rule_saved(
    rule: AttributionRule, *, actor: User, reason: str, event: str, before: dict[str, Any] | None
) -> AttributionRule:
    """Validate and save a rule, then give it the exposures waiting in triage that it matches."""
    if not (rule.repository_pattern or rule.path_pattern or rule.detector_pattern):
        raise ValidationError("Give at least one pattern: repository, path or detector.")
    _validated(rule, actor=actor, reason=reason)
    after = audit_fields(rule, _RULE_FIELDS, verbatim=_RULE_PATTERNS)
    if before is not None:
        before, after = audit_changes(before, after)
    audit_entry_append(actor=actor, event=event, target=rule, before=before, after=after)
    attribution_rules_apply(actor=actor)
    return rule


@transaction.atomic
def attribution_rules_apply(*, actor: Actor) -> int:
    """Give the unattributed exposures to the identity of the first rule their first finding matches."""
    user = require_permission(actor, "findings.attribute_exposure", to="attribute exposures")
    from_rules = Attributor()
    attributed: list[int] = []
    by_rule: dict[str, int] = {}
    pending = Exposure.objects.filter(nhi__isnull=True).order_by("pk")
    for exposure in pending.iterator(chunk_size=PROMOTION_CHUNK):
        first = Finding.objects.filter(exposure=exposure).order_by("pk").first()
        if first is None:
            continue
        rule = from_rules.rule_for(repository=first.repository, path=first.path, detector=first.detector)
        if rule is None:
            continue
        exposure.nhi_id, exposure.attribution_rule, exposure.attribution = rule.nhi_id, rule, Attribution.RULE
        _save(exposure, actor=user, reason=f"attributed by rule #{rule.pk}")
        attributed.append(exposure.pk)
        by_rule[str(rule.pk)] = by_rule.get(str(rule.pk), 0) + 1
    if attributed:
        # One entry for the sweep, however many exposures it gave away: counts per rule, not a row each.
        audit_entry_append(
            actor=user,
            event="attribution_rule.apply",
            details={"attributed": len(attributed), "by_rule": by_rule},
        )
    for start in range(0, len(attributed), PROMOTION_CHUNK):
        exposures_promote(actor=user, exposure_ids=attributed[start : start + PROMOTION_CHUNK])
    return len(attributed)


_PROMOTION_FIELDS = (
    "position",
    "condition",
    "requires_attribution",
    "min_locations",
    "severity",
    "is_active",
)


@transaction.atomic
def promotion_rule_create(*, actor: Actor, fields: Mapping[str, Any]) -> PromotionRule:
    user = require_permission(actor, "findings.add_promotionrule", to="create promotion rules")
    _reject_unknown(fields, _PROMOTION_FIELDS, "promotion rules")
    rule = PromotionRule(**fields)
    _validated(rule, actor=user, reason="created")
    audit_entry_append(
        actor=user,
        event="promotion_rule.create",
        target=rule,
        after=audit_fields(rule, _PROMOTION_FIELDS),
    )
    return rule


@transaction.atomic
def promotion_rule_update(*, actor: Actor, rule_id: int, changes: Mapping[str, Any]) -> PromotionRule:
    user = require_permission(actor, "findings.change_promotionrule", to="change promotion rules")
    rule = PromotionRule.objects.select_for_update().get(pk=rule_id)
    _reject_unknown(changes, _PROMOTION_FIELDS, "promotion rules")
    before = audit_fields(rule, _PROMOTION_FIELDS)
    for name, value in changes.items():
        setattr(rule, name, value)
    _validated(rule, actor=user, reason="changed: " + ", ".join(sorted(changes)))
    was, now = audit_changes(before, audit_fields(rule, _PROMOTION_FIELDS))
    audit_entry_append(actor=user, event="promotion_rule.update", target=rule, before=was, after=now)
    return rule
