"""The rule on its own: which facts and proposals change ownership, state or evidence requirements."""

import pytest

from intake.rules import Facts, assess

NONE = {
    "needs_multi_person_review": False,
    "triggers_downstream_work": False,
    "must_be_retained_as_evidence": False,
    "depends_on_fresh_context": False,
}
# fact -> (the change it causes, the words the explanation uses for it)
EACH_FACT = {
    "needs_multi_person_review": ("state", "it needs review by more than one person"),
    "triggers_downstream_work": ("ownership", "it triggers downstream work"),
    "must_be_retained_as_evidence": ("evidence_requirements", "it must be retained as evidence"),
    "depends_on_fresh_context": ("evidence_requirements", "it depends on fresh context"),
}


def changes(facts: Facts, kinds: list[str]) -> dict[str, bool]:
    result = assess(facts, kinds)
    return {
        "ownership": result.changes_ownership,
        "state": result.changes_state,
        "evidence_requirements": result.changes_evidence_requirements,
    }


@pytest.mark.parametrize("fact", EACH_FACT)
def test_it_promotes_on_each_fact_alone_and_names_it(fact: str) -> None:
    change, words = EACH_FACT[fact]
    facts = Facts(**{**NONE, fact: True})
    result = assess(facts, [])
    assert result.promoted
    assert changes(facts, []) == {
        name: name == change for name in ("ownership", "state", "evidence_requirements")
    }
    assert result.triggers == [fact]
    assert words in result.explanation()


def test_it_leaves_an_output_with_no_fact_and_no_proposal_as_an_advisory() -> None:
    result = assess(Facts(**NONE), [])
    assert not result.promoted
    assert result.triggers == []
    assert "advisory" in result.explanation()
    assert "changes neither ownership, state nor evidence requirements" in result.explanation()


def test_it_takes_a_proposed_action_as_a_change_of_ownership_even_when_no_fact_says_so() -> None:
    result = assess(Facts(**NONE), ["ticket"])
    assert changes(Facts(**NONE), ["ticket"]) == {
        "ownership": True,
        "state": False,
        "evidence_requirements": False,
    }
    assert result.triggers == ["proposed_actions"]
    assert "it proposes 1 action, which someone must own" in result.explanation()


@pytest.mark.parametrize("kind", ["containment", "revocation", "rotation"])
def test_it_takes_a_proposed_containment_revocation_or_rotation_as_a_change_of_state(kind: str) -> None:
    result = assess(Facts(**NONE), [kind])
    assert result.changes_state
    assert result.triggers == ["proposed_actions", "proposed_state_change"]
    assert f"it proposes {kind}, which changes an identity's state" in result.explanation()


@pytest.mark.parametrize("kind", ["ticket", "other"])
def test_it_does_not_take_a_ticket_or_other_action_as_a_change_of_state(kind: str) -> None:
    assert not assess(Facts(**NONE), [kind]).changes_state


def test_it_names_every_change_and_every_cause_in_one_sentence() -> None:
    facts = Facts(
        needs_multi_person_review=True,
        triggers_downstream_work=True,
        must_be_retained_as_evidence=True,
        depends_on_fresh_context=True,
    )
    explanation = assess(facts, ["revocation", "ticket"]).explanation()
    assert explanation.startswith("It changes ownership (it triggers downstream work; it proposes 2 actions")
    assert ", state (it needs review by more than one person; it proposes revocation" in explanation
    assert (
        "and evidence requirements (it must be retained as evidence; it depends on fresh context"
        in explanation
    )
