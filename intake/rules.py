"""The guidance's rule for assistant output: if it changes ownership, state or evidence requirements, it
should stop being chat.

`assess` derives the three changes from the four facts the assistant states and from the actions it
proposes. It is deliberately strict: an action proposed is taken at its word even when the facts say
otherwise, since the assistant's own view of its output is exactly what must not be trusted alone.

- ownership: it triggers downstream work, or it proposes any action (someone must own doing it);
- state: it needs review by more than one person (it must wait for an approval), or it proposes a
  containment, revocation or rotation (the identity's or credential's state would change);
- evidence requirements: it must be retained as evidence, or it depends on fresh context (the identities'
  current criticality, privilege and exposure must be captured with the decision).

Any one of them promotes the output into a case; none of them leaves it an advisory.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from cases.models import ActionKind

STATE_CHANGING_KINDS = (ActionKind.CONTAINMENT, ActionKind.REVOCATION, ActionKind.ROTATION)

# What can promote an output: the four facts by their field names, and two properties of the proposal.
PROPOSED_ACTIONS = "proposed_actions"
PROPOSED_STATE_CHANGE = "proposed_state_change"


@dataclass(frozen=True)
class Facts:
    needs_multi_person_review: bool
    triggers_downstream_work: bool
    must_be_retained_as_evidence: bool
    depends_on_fresh_context: bool


FACT_NAMES = tuple(Facts.__dataclass_fields__)


@dataclass(frozen=True)
class Assessment:
    changes_ownership: bool
    changes_state: bool
    changes_evidence_requirements: bool
    # (trigger name, the clause that explains it), grouped by the change they cause.
    ownership_causes: tuple[tuple[str, str], ...]
    state_causes: tuple[tuple[str, str], ...]
    evidence_causes: tuple[tuple[str, str], ...]

    @property
    def promoted(self) -> bool:
        return self.changes_ownership or self.changes_state or self.changes_evidence_requirements

    @property
    def triggers(self) -> list[str]:
        names = [name for name, _ in (*self.ownership_causes, *self.state_causes, *self.evidence_causes)]
        return list(dict.fromkeys(names))

    def explanation(self) -> str:
        """Which changes, and why, as one sentence; or why it stays chat."""
        if not self.promoted:
            return (
                "It is an advisory: it needs no review by more than one person, triggers no downstream "
                "work, need not be retained as evidence, does not depend on fresh context and proposes no "
                "action, so it changes neither ownership, state nor evidence requirements."
            )
        parts = [
            f"{change} ({'; '.join(clause for _, clause in causes)})"
            for change, causes in (
                ("ownership", self.ownership_causes),
                ("state", self.state_causes),
                ("evidence requirements", self.evidence_causes),
            )
            if causes
        ]
        listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
        return f"It changes {listed}, so it stops being chat and becomes a case."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def assess(facts: Facts, proposed_kinds: Sequence[str]) -> Assessment:
    ownership: list[tuple[str, str]] = []
    state: list[tuple[str, str]] = []
    evidence: list[tuple[str, str]] = []
    if facts.triggers_downstream_work:
        ownership.append(("triggers_downstream_work", "it triggers downstream work"))
    if proposed_kinds:
        ownership.append(
            (
                PROPOSED_ACTIONS,
                f"it proposes {_plural(len(proposed_kinds), 'action')}, which someone must own",
            )
        )
    if facts.needs_multi_person_review:
        state.append(("needs_multi_person_review", "it needs review by more than one person"))
    changing = [kind for kind in STATE_CHANGING_KINDS if kind in proposed_kinds]
    if changing:
        labels = " and ".join(ActionKind(kind).label.lower() for kind in changing)
        state.append((PROPOSED_STATE_CHANGE, f"it proposes {labels}, which changes an identity's state"))
    if facts.must_be_retained_as_evidence:
        evidence.append(("must_be_retained_as_evidence", "it must be retained as evidence"))
    if facts.depends_on_fresh_context:
        evidence.append(
            (
                "depends_on_fresh_context",
                "it depends on fresh context: the identities' current criticality, privilege and exposure",
            )
        )
    return Assessment(
        changes_ownership=bool(ownership),
        changes_state=bool(state),
        changes_evidence_requirements=bool(evidence),
        ownership_causes=tuple(ownership),
        state_causes=tuple(state),
        evidence_causes=tuple(evidence),
    )
