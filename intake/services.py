"""The intake: an assistant's structured output in, a case or an advisory out, and the reason why.

`assistant_output_submit` applies the rule of `intake.rules.assess`. A promoted output opens a case, or
joins the oldest open case of the same kind concerning one of its identities; its recommendation and each
action it proposes become action items that nobody may start or complete until a person with the approver
role, other than the submitter, approves them (`cases.services.action_item_approve`). When it must be
retained as evidence, its canonical JSON is captured on the case; when it depends on fresh context, the
identities' current criticality, privilege and exposure are captured too. Everything happens in one
transaction, through the case services (each checks its own permission), so nothing is half-written.
"""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_entry_append
from audit.values import audit_fields
from cases.models import ActionItem, ActionKind, Case, CaseKind, CaseOrigin, EvidenceKind, Severity
from cases.services import (
    action_item_propose,
    case_link_identity,
    case_open,
    case_update,
    comment_add,
    evidence_capture,
)
from intake.models import (
    AssistantOutput,
    AssistantOutputCredential,
    AssistantOutputIdentity,
    Outcome,
    ProposedAction,
)
from intake.redaction import masked, reference_without_secrets
from intake.rules import FACT_NAMES, Assessment, Facts, assess
from intake.selectors import joinable_case
from nhi_inventory.models import Credential, NonHumanIdentity, Team
from nhi_inventory.selectors import credential_list, nhi_list
from portal.permissions import Actor, require_permission

MAX_SUMMARY = 10_000
MAX_RECOMMENDATION = 5_000
MAX_DESCRIPTION = 1_000
MAX_REFERENCES = 50  # identities, credentials, fingerprints: each
MAX_PROPOSED_ACTIONS = 20
TITLE_LENGTH = 200


@dataclass(frozen=True)
class ProposedActionInput:
    kind: str
    description: str


@dataclass(frozen=True)
class _Concerned:
    identities: list[NonHumanIdentity]  # those named, then those of the credentials named; no repeats
    credentials: list[Credential]


# --- Input ------------------------------------------------------------------------------------------------


def _text(value: str, *, field: str, limit: int, errors: dict[str, str]) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        errors[field] = "This field may not be blank."
    elif len(value) > limit:
        errors[field] = f"At most {limit} characters."
    return value


def _check_input(
    *,
    summary: str,
    recommendation: str,
    assistant: str,
    conversation_ref: str,
    facts: Facts,
    nhi_ids: Sequence[int],
    credential_ids: Sequence[int],
    credential_fingerprints: Sequence[str],
    proposed_actions: Sequence[ProposedActionInput],
    case_kind: str,
) -> None:
    """Shape checks the API's serializer also makes, repeated so that no other caller can skip them."""
    errors: dict[str, str] = {}
    _text(summary, field="summary", limit=MAX_SUMMARY, errors=errors)
    _text(recommendation, field="recommendation", limit=MAX_RECOMMENDATION, errors=errors)
    _text(assistant, field="source.assistant", limit=100, errors=errors)
    if len(conversation_ref) > 300:
        errors["source.conversation_ref"] = "At most 300 characters."
    for name in FACT_NAMES:
        if not isinstance(getattr(facts, name), bool):
            errors[f"facts.{name}"] = "Must be true or false."
    if not (nhi_ids or credential_ids or credential_fingerprints):
        errors["nhis"] = (
            "Name at least one identity (nhis) or credential (credentials, credential_fingerprints) that the "
            "output concerns."
        )
    for field, values in (
        ("nhis", nhi_ids),
        ("credentials", credential_ids),
        ("credential_fingerprints", credential_fingerprints),
    ):
        if len(values) > MAX_REFERENCES:
            errors[field] = f"At most {MAX_REFERENCES} items."
    if len(proposed_actions) > MAX_PROPOSED_ACTIONS:
        errors["proposed_actions"] = f"At most {MAX_PROPOSED_ACTIONS} items."
    for position, action in enumerate(proposed_actions):
        if action.kind not in ActionKind.values:
            errors[f"proposed_actions.{position}.kind"] = f"Choose one of: {', '.join(ActionKind.values)}."
        _text(
            action.description,
            field=f"proposed_actions.{position}.description",
            limit=MAX_DESCRIPTION,
            errors=errors,
        )
    if case_kind not in CaseKind.values:
        errors["case_kind"] = f"Choose one of: {', '.join(CaseKind.values)}."
    if errors:
        raise ValidationError(errors)


def _concerned(
    *,
    user: User,
    nhi_ids: Sequence[int],
    credential_ids: Sequence[int],
    credential_fingerprints: Sequence[str],
) -> _Concerned:
    """The identities and credentials referred to, among those the user may see; unknown ones refused.

    An id the user may not see gets the same answer as an id that does not exist.
    """
    errors: dict[str, str] = {}
    identities = nhi_list(user=user).select_related("owner_team").in_bulk(set(nhi_ids))
    missing = [str(pk) for pk in dict.fromkeys(nhi_ids) if pk not in identities]
    if missing:
        errors["nhis"] = f"No identity with id {', '.join(missing)} that you can see."
    visible = credential_list(user=user).select_related("nhi__owner_team")
    by_id = visible.in_bulk(set(credential_ids))
    missing = [str(pk) for pk in dict.fromkeys(credential_ids) if pk not in by_id]
    if missing:
        errors["credentials"] = f"No credential with id {', '.join(missing)} that you can see."
    by_fingerprint = {
        credential.fingerprint: credential
        for credential in visible.filter(fingerprint__in=set(credential_fingerprints))
    }
    unknown = [
        str(position)
        for position, fingerprint in enumerate(credential_fingerprints)
        if fingerprint not in by_fingerprint
    ]
    if unknown:
        # Positions, not values: a client that sent a raw secret here must not get it back in an error.
        errors["credential_fingerprints"] = (
            f"No credential you can see has the fingerprint at position {', '.join(unknown)}."
        )
    if errors:
        raise ValidationError(errors)
    credentials = list(
        {
            credential.pk: credential
            for credential in [
                *(by_id[pk] for pk in credential_ids),
                *(by_fingerprint[fingerprint] for fingerprint in credential_fingerprints),
            ]
        }.values()
    )
    named = [identities[pk] for pk in nhi_ids]
    all_identities = {identity.pk: identity for identity in [*named, *(c.nhi for c in credentials)]}
    return _Concerned(identities=list(all_identities.values()), credentials=credentials)


# --- What goes on the case ---------------------------------------------------------------------------------


def _title(text: str, *, prefix: str = "") -> str:
    line = f"{prefix}{text.strip().splitlines()[0].strip()}"
    return line if len(line) <= TITLE_LENGTH else f"{line[: TITLE_LENGTH - 1]}…"


def _severity(facts: Facts, kinds: Sequence[str]) -> int:
    """High when a second person must be involved (closing a high case needs a closure approval by a second
    person) or when it proposes containment or revocation; otherwise medium. Never critical on an
    assistant's word alone: a person may raise it."""
    if facts.needs_multi_person_review or {ActionKind.CONTAINMENT, ActionKind.REVOCATION} & set(kinds):
        return Severity.HIGH
    return Severity.MEDIUM


def _owning_team(case: Case | None, identities: Sequence[NonHumanIdentity]) -> Team | None:
    if case is not None and case.owning_team is not None:
        return case.owning_team
    return next((identity.owner_team for identity in identities if identity.owner_team is not None), None)


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _context_snapshot(concerned: _Concerned, *, at: str) -> str:
    """The facts a decision on these identities depends on, as they are now."""
    return _canonical(
        {
            "captured_at": at,
            "identities": [
                {
                    "id": identity.pk,
                    "name": identity.name,
                    "kind": identity.kind,
                    "environment": identity.environment,
                    "owner_team": identity.owner_team.name if identity.owner_team else None,
                    "criticality": identity.get_criticality_display(),
                    "privilege_level": identity.get_privilege_level_display(),
                    "internet_facing": identity.internet_facing,
                    "third_party": identity.third_party,
                    "lifecycle_state": identity.lifecycle_state,
                    "last_rotated_at": identity.last_rotated_at.isoformat()
                    if identity.last_rotated_at
                    else None,
                }
                for identity in concerned.identities
            ],
            "credentials": [
                {
                    "id": credential.pk,
                    "nhi": credential.nhi_id,
                    "preview": credential.preview,
                    "status": credential.status,
                    "expires_at": credential.expires_at.isoformat() if credential.expires_at else None,
                }
                for credential in concerned.credentials
            ],
        }
    )


def _record(output: AssistantOutput, concerned: _Concerned, actions: Sequence[ProposedActionInput]) -> str:
    """The output as it is kept as evidence: what the assistant said and what the portal decided."""
    return _canonical(
        {
            "reference": str(output.uid),
            "source": {"assistant": output.assistant, "conversation_ref": output.conversation_ref},
            "summary": output.summary,
            "recommendation": output.recommendation,
            "nhis": [{"id": identity.pk, "name": identity.name} for identity in concerned.identities],
            "credentials": [
                {"id": credential.pk, "fingerprint": credential.fingerprint}
                for credential in concerned.credentials
            ],
            "proposed_actions": [
                {"kind": action.kind, "description": action.description} for action in actions
            ],
            "facts": {name: getattr(output, name) for name in FACT_NAMES},
            "changes": {
                "ownership": output.changes_ownership,
                "state": output.changes_state,
                "evidence_requirements": output.changes_evidence_requirements,
            },
            "outcome": output.outcome,
            "reason": output.reason,
            "case": output.case.reference if output.case else None,
            "masked_fields": output.masked_fields,
            "submitted_by": output.submitted_by.get_username(),
            "submitted_at": output.submitted_at.isoformat(),
        }
    )


def _promote(
    *,
    user: User,
    output: AssistantOutput,
    assessment: Assessment,
    facts: Facts,
    concerned: _Concerned,
    actions: Sequence[ProposedActionInput],
) -> list[ActionItem]:
    """Open or join the case, propose the work, capture the evidence; returns the proposed actions' items."""
    # Two outputs about one identity at once must not both open a case: take the identities in a fixed order.
    identity_ids = [identity.pk for identity in concerned.identities]
    list(NonHumanIdentity.objects.select_for_update().filter(pk__in=identity_ids).order_by("pk"))
    kinds = [action.kind for action in actions]
    severity = _severity(facts, kinds)
    case = joinable_case(user=user, kind=output.case_kind, nhi_ids=identity_ids)
    team = _owning_team(case, concerned.identities)
    if team is None:
        raise ValidationError(
            {
                "nhis": "No team owns the identities concerned, so nobody could be asked to approve and do "
                "the proposed work: give them an owning team first."
            }
        )
    label = CaseKind(output.case_kind).label
    if case is None:
        case = case_open(
            actor=user,
            title=_title(output.summary, prefix=f"{output.assistant}: "),
            kind=output.case_kind,
            severity=severity,
            summary=f"{output.summary}\n\nRecommendation: {output.recommendation}",
            origin=CaseOrigin.ASSISTANT,
            identities=concerned.identities,
            owning_team=next((i.owner_team for i in concerned.identities if i.owner_team is not None), None),
        )
        output.outcome = Outcome.CASE_OPENED
        where = f"Opened {case.reference} (kind: {label}; severity: {Severity(severity).label.lower()})."
    else:
        output.outcome = Outcome.CASE_JOINED
        joined_via = next(i for i in concerned.identities if case.identity_links.filter(nhi=i).exists())
        where = f"Joined {case.reference}, the oldest open case of kind {label} concerning {joined_via.name}."
        if case.severity < severity:
            case = case_update(
                actor=user,
                case_id=case.pk,
                changes={"severity": severity},
                reason=f"severity raised by assistant output {output.uid}",
            )
            where += f" Its severity was raised to {Severity(severity).label.lower()}."
        for identity in concerned.identities:
            case_link_identity(actor=user, case_id=case.pk, nhi_id=identity.pk)
    output.case = case
    awaiting = (
        f"Its recommendation and {len(actions)} proposed action(s) await"
        if actions
        else "Its recommendation awaits"
    )
    done = [where, f"{awaiting} a person's approval there."]
    if facts.must_be_retained_as_evidence:
        done.append("The output is kept as evidence on the case.")
    if facts.depends_on_fresh_context:
        done.append("The identities' current criticality, privilege and exposure were captured with it.")
    output.reason = f"{assessment.explanation()} {' '.join(done)}"

    output.recommendation_item = action_item_propose(
        actor=user,
        case_id=case.pk,
        kind=ActionKind.OTHER,
        title=_title(output.recommendation, prefix="Recommended: "),
        owning_team=team,
    )
    items = [
        action_item_propose(
            actor=user, case_id=case.pk, kind=action.kind, title=_title(action.description), owning_team=team
        )
        for action in actions
    ]
    if facts.depends_on_fresh_context:
        output.context_evidence = evidence_capture(
            actor=user,
            case_id=case.pk,
            kind=EvidenceKind.NOTE,
            title=f"Identity context when assistant output {output.uid} arrived",
            note=_context_snapshot(concerned, at=output.submitted_at.isoformat()),
        )
    if facts.must_be_retained_as_evidence:
        output.evidence = evidence_capture(
            actor=user,
            case_id=case.pk,
            kind=EvidenceKind.NOTE,
            title=f"Assistant output {output.uid} from {output.assistant}"[:TITLE_LENGTH],
            note=_record(output, concerned, actions),
        )
    comment_add(actor=user, case_id=case.pk, body=_comment(output, actions))
    return items


def _comment(output: AssistantOutput, actions: Sequence[ProposedActionInput]) -> str:
    source = f" ({output.conversation_ref})" if output.conversation_ref else ""
    lines = [
        f"Assistant output {output.uid} from {output.assistant}{source}:",
        output.summary[:1000],
        f"Recommendation: {output.recommendation[:1000]}",
        *(
            f"- proposed {ActionKind(action.kind).label.lower()}: {action.description[:300]}"
            for action in actions
        ),
        output.reason,
    ]
    return "\n".join(lines)


# --- The service -------------------------------------------------------------------------------------------


@transaction.atomic
def assistant_output_submit(
    *,
    actor: Actor,
    summary: str,
    recommendation: str,
    assistant: str,
    facts: Facts,
    conversation_ref: str = "",
    nhi_ids: Sequence[int] = (),
    credential_ids: Sequence[int] = (),
    credential_fingerprints: Sequence[str] = (),
    proposed_actions: Sequence[ProposedActionInput] = (),
    case_kind: str = CaseKind.AI_OUTPUT,
) -> AssistantOutput:
    """Record an assistant's output and apply the rule: a case (opened or joined) or an advisory, with why."""
    user = require_permission(actor, "intake.submit_assistantoutput", to="submit assistant outputs")
    _check_input(
        summary=summary,
        recommendation=recommendation,
        assistant=assistant,
        conversation_ref=conversation_ref,
        facts=facts,
        nhi_ids=nhi_ids,
        credential_ids=credential_ids,
        credential_fingerprints=credential_fingerprints,
        proposed_actions=proposed_actions,
        case_kind=case_kind,
    )
    concerned = _concerned(
        user=user,
        nhi_ids=nhi_ids,
        credential_ids=credential_ids,
        credential_fingerprints=credential_fingerprints,
    )
    # From here on only masked text is referenced: the raw text is not stored, logged or sent anywhere.
    masked_fields: list[str] = []

    def clean(text: str, field: str) -> str:
        result = masked(text.strip())
        if result != text.strip():
            masked_fields.append(field)
        return result

    actions = [
        ProposedActionInput(
            kind=action.kind,
            description=clean(action.description, f"proposed_actions.{position}.description"),
        )
        for position, action in enumerate(proposed_actions)
    ]
    assessment = assess(facts, [action.kind for action in actions])
    output = AssistantOutput(
        uid=uuid.uuid4(),
        summary=clean(summary, "summary"),
        recommendation=clean(recommendation, "recommendation"),
        assistant=assistant.strip(),
        conversation_ref=reference_without_secrets(conversation_ref),
        case_kind=case_kind,
        changes_ownership=assessment.changes_ownership,
        changes_state=assessment.changes_state,
        changes_evidence_requirements=assessment.changes_evidence_requirements,
        triggers=assessment.triggers,
        submitted_by=user,
        submitted_at=timezone.now(),
        **{name: getattr(facts, name) for name in FACT_NAMES},
    )
    # Set before `_promote`, which quotes it in the evidence.
    output.masked_fields = masked_fields
    items: list[ActionItem | None] = [None] * len(actions)
    if assessment.promoted:
        items = list(
            _promote(
                user=user,
                output=output,
                assessment=assessment,
                facts=facts,
                concerned=concerned,
                actions=actions,
            )
        )
    else:
        output.outcome = Outcome.ADVISORY
        output.reason = f"{assessment.explanation()} Recorded as a read-only advisory; no case was opened."
    output.full_clean()
    _insert(output, user=user)
    for identity in concerned.identities:
        _insert(AssistantOutputIdentity(output=output, nhi=identity), user=user)
    for credential in concerned.credentials:
        _insert(AssistantOutputCredential(output=output, credential=credential), user=user)
    for position, (action, item) in enumerate(zip(actions, items, strict=True)):
        _insert(
            ProposedAction(
                output=output,
                position=position,
                kind=action.kind,
                description=action.description,
                action_item=item,
            ),
            user=user,
        )
    # Written last, so it names every row the submission made; only masked text, and that as digests.
    audit_entry_append(
        actor=user,
        event="intake.submit",
        target=output,
        case_id=output.case_id,
        after={
            **audit_fields(
                output,
                (
                    "uid",
                    "outcome",
                    "case",
                    "case_kind",
                    "triggers",
                    "reason",
                    "summary",
                    "recommendation",
                    "assistant",
                ),
            ),
            "proposals": len(actions),
            "proposed_items": [item.pk for item in items if item is not None],
            "recommendation_item": output.recommendation_item_id,
            "evidence": output.evidence_id,
            "context_evidence": output.context_evidence_id,
            "identities": [identity.pk for identity in concerned.identities],
            "credentials": [credential.pk for credential in concerned.credentials],
            "masked_fields": masked_fields,
        },
    )
    return output


def _insert(row: Any, *, user: User) -> None:
    row._history_user = user
    row.save()
