"""Attack-path reviews: ordered steps, each routable once to the team that must remediate it."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from cases import services
from cases.errors import CaseWorkflowError
from cases.models import ActionItem, ActionKind, ActionStatus, AttackPathStep, CaseKind, CaseState
from frameworks.models import Control, ControlKind, Framework


@pytest.fixture
def review(open_case):
    return open_case(kind=CaseKind.ATTACK_PATH_REVIEW)


def _step(actor, case, source, target, **extra):
    return services.attack_path_step_add(
        actor=actor, case_id=case.pk, source_node=source, target_node=target, technique="T1552", **extra
    )


def test_steps_are_numbered_in_the_order_they_are_added(review, analyst):
    _step(analyst, review, "internet", "ci runner")
    _step(analyst, review, "ci runner", "deploy key")
    _step(analyst, review, "deploy key", "prod db")

    path = list(review.attack_path_steps.values_list("position", "source_node"))

    assert path == [(1, "internet"), (2, "ci runner"), (3, "deploy key")]


def test_a_step_added_at_an_explicit_position_is_listed_in_position_order(review, analyst):
    _step(analyst, review, "b", "c", position=5)
    _step(analyst, review, "a", "b", position=2)
    last = _step(analyst, review, "c", "d")

    assert last.position == 6
    assert list(review.attack_path_steps.values_list("source_node", flat=True)) == ["a", "b", "c"]


def test_two_steps_cannot_share_a_position(review, analyst):
    _step(analyst, review, "a", "b", position=1)

    with pytest.raises(ValidationError):
        _step(analyst, review, "x", "y", position=1)

    assert review.attack_path_steps.count() == 1


@pytest.mark.parametrize("kind", [CaseKind.SECRET_EXPOSURE, CaseKind.ALERT_TRIAGE, CaseKind.NHI_MISUSE])
def test_steps_are_only_for_attack_path_reviews(open_case, analyst, kind):
    case = open_case(kind=kind)

    with pytest.raises(ValidationError) as refused:
        _step(analyst, case, "a", "b")

    assert set(refused.value.message_dict) == {"case"}
    assert not AttackPathStep.objects.exists()


def test_steps_are_refused_on_a_settled_review(case_in_state, analyst):
    case = case_in_state(CaseState.DISMISSED, kind=CaseKind.ATTACK_PATH_REVIEW)

    with pytest.raises(CaseWorkflowError):
        _step(analyst, case, "a", "b")

    assert not AttackPathStep.objects.exists()


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_only_an_analyst_adds_steps(review, persona, who):
    with pytest.raises(PermissionDenied):
        _step(persona(who), review, "a", "b")

    assert not AttackPathStep.objects.exists()


# --- Routing ------------------------------------------------------------------------------------------------


def test_routing_a_step_creates_an_action_item_for_its_remediation_team_and_links_it(
    review, analyst, platform
):
    step = _step(analyst, review, "ci runner", "deploy key", remediation_team=platform)

    item = services.attack_path_step_route(actor=analyst, step_id=step.pk, kind=ActionKind.REVOCATION)

    step.refresh_from_db()
    assert step.remediation_action == item
    assert (item.case, item.owning_team, item.kind, item.status) == (
        review,
        platform,
        ActionKind.REVOCATION,
        ActionStatus.OPEN,
    )
    assert item.created_by == analyst
    assert item.title.startswith("Remediate step 1: ci runner → deploy key")


def test_routing_names_the_failed_control_in_the_action_item(review, analyst, platform):
    framework = Framework.objects.create(
        key="nist-csf-2.0", name="NIST CSF", version="2.0", publisher="NIST", source="test", license="public"
    )
    control = Control.objects.create(
        framework=framework,
        ref_id="PR.AA-01",
        kind=ControlKind.SUBCATEGORY,
        statement="Identities are managed",
    )
    step = _step(analyst, review, "a", "b", remediation_team=platform, failed_control=control)

    item = services.attack_path_step_route(actor=analyst, step_id=step.pk)

    assert "failed control: PR.AA-01" in item.title


def test_routing_a_step_twice_is_refused(review, analyst, platform):
    step = _step(analyst, review, "a", "b", remediation_team=platform)
    first = services.attack_path_step_route(actor=analyst, step_id=step.pk)

    with pytest.raises(CaseWorkflowError):
        services.attack_path_step_route(actor=analyst, step_id=step.pk)

    assert list(ActionItem.objects.all()) == [first]


def test_routing_a_step_without_a_remediation_team_is_refused(review, analyst):
    step = _step(analyst, review, "a", "b")

    with pytest.raises(ValidationError) as refused:
        services.attack_path_step_route(actor=analyst, step_id=step.pk)

    assert set(refused.value.message_dict) == {"remediation_team"}
    assert not ActionItem.objects.exists()


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_only_an_analyst_routes_a_step(review, analyst, payments, persona, who):
    step = _step(analyst, review, "a", "b", remediation_team=payments)

    with pytest.raises(PermissionDenied):
        services.attack_path_step_route(actor=persona(who), step_id=step.pk)

    step.refresh_from_db()
    assert step.remediation_action is None
    assert not ActionItem.objects.exists()


def test_the_team_a_step_is_routed_to_can_complete_the_work(review, analyst, owner, payments):
    step = _step(analyst, review, "a", "b", remediation_team=payments)
    item = services.attack_path_step_route(actor=analyst, step_id=step.pk)

    services.action_item_set_status(actor=owner, action_item_id=item.pk, status=ActionStatus.DONE)

    routed = AttackPathStep.objects.get(pk=step.pk).remediation_action
    assert routed is not None
    assert routed.status == ActionStatus.DONE


def test_a_routed_step_lets_the_review_start_action(review, analyst, payments):
    services.case_confirm(case_id=review.pk, actor=analyst)
    services.case_assign(case_id=review.pk, actor=analyst, assignee=analyst, owning_team=payments)
    step = _step(analyst, review, "a", "b", remediation_team=payments)
    services.attack_path_step_route(actor=analyst, step_id=step.pk)

    services.case_start_action(case_id=review.pk, actor=analyst)

    review.refresh_from_db()
    assert review.state == CaseState.IN_PROGRESS
