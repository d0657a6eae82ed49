"""Each persona against each service, and what each persona's case list holds."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from cases import selectors, services
from cases.models import (
    ActionStatus,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseState,
    Comment,
    Evidence,
    Severity,
)
from tests.cases.support import record_of
from tests.factories import NonHumanIdentityFactory

PERSONAS = ("analyst", "approver", "auditor", "owner", "outsider")


@pytest.fixture
def platform_case(open_case, platform_identity):
    """A case that concerns only the Platform team: the owner (Payments) must not see or touch it."""
    return open_case(identities=[platform_identity])


# --- Opening and editing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_only_an_analyst_can_open_a_case(persona, who):
    with pytest.raises(PermissionDenied):
        services.case_open(actor=persona(who), title="Leaked token", kind="secret_exposure")

    assert not Case.objects.exists()


def test_an_anonymous_caller_cannot_open_a_case(db):
    with pytest.raises(PermissionDenied):
        services.case_open(actor=AnonymousUser(), title="Leaked token", kind="secret_exposure")


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_only_an_analyst_can_edit_a_case(open_case, persona, who):
    case = open_case()

    with pytest.raises(PermissionDenied):
        services.case_update(actor=persona(who), case_id=case.pk, changes={"title": "Renamed"})

    assert Case.objects.get(pk=case.pk).title == case.title


# --- Transitions --------------------------------------------------------------------------------------------


def _transition(name, case, actor, team):
    calls = {
        "confirm": lambda: services.case_confirm(case_id=case.pk, actor=actor),
        "assign": lambda: services.case_assign(
            case_id=case.pk, actor=actor, assignee=actor, owning_team=team
        ),
        "start_action": lambda: services.case_start_action(case_id=case.pk, actor=actor),
        "verify": lambda: services.case_verify(case_id=case.pk, actor=actor),
        "close": lambda: services.case_close(case_id=case.pk, actor=actor),
        "dismiss": lambda: services.case_dismiss(
            case_id=case.pk, actor=actor, dismissal_reason="false_positive", reason="noise"
        ),
        "reopen": lambda: services.case_reopen(case_id=case.pk, actor=actor, reason="again"),
    }
    return calls[name]()


@pytest.fixture
def case_before(case_in_state, ready_to_verify, analyst, payments):
    """A case (on the Payments team) in the state where transition `name` is possible and unblocked."""

    def make(name):
        if name == "start_action":
            case = case_in_state(CaseState.ASSIGNED)
            services.action_item_add(
                actor=analyst, case_id=case.pk, kind="rotation", title="R", owning_team=payments
            )
            return case
        if name == "verify":
            return ready_to_verify()
        start = {
            "confirm": CaseState.IDENTIFIED,
            "assign": CaseState.CONFIRMED,
            "close": CaseState.VERIFIED,
            "dismiss": CaseState.IDENTIFIED,
            "reopen": CaseState.CLOSED,
        }[name]
        return case_in_state(start)

    return make


TRANSITIONS = ("confirm", "assign", "start_action", "verify", "close", "dismiss", "reopen")


@pytest.mark.parametrize("name", TRANSITIONS)
def test_an_analyst_can_make_every_transition(case_before, analyst, payments, name):
    case = case_before(name)

    _transition(name, case, analyst, payments)

    assert Case.objects.get(pk=case.pk).state != case.state


@pytest.mark.parametrize(
    ("who", "name"),
    [
        (who, name)
        for who in ("approver", "auditor", "owner", "outsider")
        for name in TRANSITIONS
        if (who, name) != ("approver", "close")
    ],
)
def test_it_refuses_a_transition_to_a_persona_without_its_permission(
    case_before, persona, payments, who, name
):
    case = case_before(name)
    before = record_of(case)

    with pytest.raises(PermissionDenied):
        _transition(name, case, persona(who), payments)

    assert record_of(case) == before


def test_an_approver_can_close_a_verified_case(case_in_state, approver):
    case = case_in_state(CaseState.VERIFIED)

    services.case_close(case_id=case.pk, actor=approver)

    assert Case.objects.get(pk=case.pk).state == CaseState.CLOSED


def test_an_inactive_analyst_cannot_make_a_transition(open_case, analyst):
    case = open_case()
    analyst.is_active = False
    analyst.save()

    with pytest.raises(PermissionDenied):
        services.case_confirm(case_id=case.pk, actor=analyst)

    assert Case.objects.get(pk=case.pk).state == CaseState.IDENTIFIED


# --- Approvals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_only_an_analyst_can_request_an_approval(case_in_state, persona, who):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)

    with pytest.raises(PermissionDenied):
        services.approval_request(
            actor=persona(who), case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="done"
        )

    assert not case.approvals.exists()


@pytest.mark.parametrize("who", ["analyst", "auditor", "owner", "outsider"])
def test_only_an_approver_can_decide_a_request(case_in_state, analyst, persona, who):
    case = case_in_state(CaseState.CONFIRMED)
    approval = services.approval_request(
        actor=analyst,
        case_id=case.pk,
        kind=ApprovalKind.RISK_ACCEPTANCE,
        reason="wait for vendor",
        risk_expires_on=timezone.localdate() + timedelta(days=30),
    )

    with pytest.raises(PermissionDenied):
        services.approval_decide(actor=persona(who), approval_id=approval.pk, approve=True)

    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    assert Case.objects.get(pk=case.pk).state == CaseState.CONFIRMED


def test_an_approver_can_decide_a_request(case_in_state, analyst, approver):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = services.approval_request(
        actor=analyst, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="done"
    )

    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)

    assert case.approvals.get().status == ApprovalStatus.APPROVED


def test_pending_approvals_for_an_approver_exclude_their_own_requests(
    case_in_state, analyst, analyst_and_approver
):
    mine = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    theirs = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    services.approval_request(
        actor=analyst_and_approver, case_id=mine.pk, kind=ApprovalKind.CLOSURE, reason="a"
    )
    other = services.approval_request(actor=analyst, case_id=theirs.pk, kind=ApprovalKind.CLOSURE, reason="b")

    assert list(selectors.pending_approvals_for(user=analyst_and_approver)) == [other]


# --- Work on a case -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["analyst", "approver", "owner"])
def test_these_personas_can_comment_on_a_case_they_see(open_case, persona, who):
    case = open_case()

    services.comment_add(actor=persona(who), case_id=case.pk, body="Looked at it.")

    assert case.comments.get().author == persona(who)


@pytest.mark.parametrize("who", ["auditor", "outsider"])
def test_auditor_and_outsider_cannot_comment(open_case, persona, who):
    case = open_case()

    with pytest.raises(PermissionDenied):
        services.comment_add(actor=persona(who), case_id=case.pk, body="Hello")

    assert not Comment.objects.exists()


@pytest.mark.parametrize("who", ["analyst", "owner"])
def test_analyst_and_owner_can_capture_evidence_on_their_case(open_case, persona, who):
    case = open_case()

    evidence = services.evidence_capture(
        actor=persona(who), case_id=case.pk, kind="note", title="Log", note="rotated"
    )

    assert evidence.captured_by == persona(who)


@pytest.mark.parametrize("who", ["approver", "auditor", "outsider"])
def test_other_personas_cannot_capture_evidence(open_case, persona, who):
    case = open_case()

    with pytest.raises(PermissionDenied):
        services.evidence_capture(
            actor=persona(who), case_id=case.pk, kind="note", title="Log", note="rotated"
        )

    assert not Evidence.objects.exists()


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_only_an_analyst_can_add_an_action_item(case_in_state, persona, payments, who):
    case = case_in_state(CaseState.ASSIGNED)

    with pytest.raises(PermissionDenied):
        services.action_item_add(
            actor=persona(who), case_id=case.pk, kind="ticket", title="T", owning_team=payments
        )

    assert not case.action_items.exists()


def test_an_owner_can_mark_their_teams_action_item_done(case_in_state, owner):
    case = case_in_state(CaseState.IN_PROGRESS)
    item = case.action_items.get()

    services.action_item_set_status(actor=owner, action_item_id=item.pk, status=ActionStatus.DONE)

    item.refresh_from_db()
    assert item.status == ActionStatus.DONE
    assert item.completed_at is not None


def test_an_owner_cannot_update_another_teams_action_item(case_in_state, analyst, owner, platform):
    case = case_in_state(CaseState.ASSIGNED)
    item = services.action_item_add(
        actor=analyst, case_id=case.pk, kind="ticket", title="T", owning_team=platform
    )

    with pytest.raises(PermissionDenied):
        services.action_item_set_status(actor=owner, action_item_id=item.pk, status=ActionStatus.DONE)

    assert case.action_items.get().status == ActionStatus.OPEN


def test_an_owner_can_update_work_routed_to_their_team_on_a_case_they_cannot_see(
    analyst, owner, payments, platform_case
):
    item = services.action_item_add(
        actor=analyst, case_id=platform_case.pk, kind="revocation", title="Revoke", owning_team=payments
    )

    services.action_item_set_status(actor=owner, action_item_id=item.pk, status=ActionStatus.IN_PROGRESS)

    assert list(selectors.action_item_list(user=owner)) == [item]
    assert not selectors.case_is_visible(case=platform_case, user=owner)


@pytest.mark.parametrize("who", ["approver", "auditor", "outsider"])
def test_other_personas_cannot_update_an_action_item(case_in_state, persona, who):
    case = case_in_state(CaseState.IN_PROGRESS)
    item = case.action_items.get()

    with pytest.raises(PermissionDenied):
        services.action_item_set_status(actor=persona(who), action_item_id=item.pk, status=ActionStatus.DONE)

    assert case.action_items.get().status == ActionStatus.OPEN


# --- Another team's case ------------------------------------------------------------------------------------


def test_an_owner_cannot_comment_on_another_teams_case(owner, platform_case):
    with pytest.raises(PermissionDenied):
        services.comment_add(actor=owner, case_id=platform_case.pk, body="Mine?")

    assert not Comment.objects.exists()


def test_an_owner_cannot_capture_evidence_on_another_teams_case(owner, platform_case):
    with pytest.raises(PermissionDenied):
        services.evidence_capture(
            actor=owner, case_id=platform_case.pk, kind="url", title="x", url="https://x.test"
        )

    assert not Evidence.objects.exists()


def test_an_owner_cannot_link_their_identity_into_another_teams_case(owner, platform_case, payments_identity):
    with pytest.raises(PermissionDenied):
        services.case_link_identity(actor=owner, case_id=platform_case.pk, nhi_id=payments_identity.pk)

    assert payments_identity not in platform_case.identities.all()


# --- Selectors ----------------------------------------------------------------------------------------------


@pytest.fixture
def three_cases(open_case, analyst, payments, platform, payments_identity, platform_identity):
    """Payments owns one case, another concerns a Payments identity, the third is Platform's alone."""
    owned = open_case(identities=[])
    services.case_confirm(case_id=owned.pk, actor=analyst)
    services.case_assign(case_id=owned.pk, actor=analyst, assignee=analyst, owning_team=payments)
    concerning = open_case(identities=[payments_identity, platform_identity])
    services.case_confirm(case_id=concerning.pk, actor=analyst)
    services.case_assign(case_id=concerning.pk, actor=analyst, assignee=analyst, owning_team=platform)
    foreign = open_case(identities=[platform_identity])
    return owned, concerning, foreign


def test_an_owner_lists_their_teams_cases_and_cases_about_their_identities(three_cases, owner):
    owned, concerning, _foreign = three_cases

    assert set(selectors.case_list(user=owner)) == {owned, concerning}


def test_an_owner_lists_cases_about_an_identity_they_own_personally(open_case, owner, platform):
    personal = NonHumanIdentityFactory.create(name="owner-laptop-token", owner_team=platform, owner=owner)
    case = open_case(identities=[personal])

    assert list(selectors.case_list(user=owner)) == [case]


@pytest.mark.parametrize("who", ["analyst", "approver", "auditor"])
def test_these_personas_list_every_case(three_cases, persona, who):
    assert set(selectors.case_list(user=persona(who))) == set(three_cases)


def test_an_outsider_lists_no_case(three_cases, outsider):
    assert not selectors.case_list(user=outsider).exists()


def test_an_inactive_auditor_lists_no_case(three_cases, auditor):
    auditor.is_active = False
    auditor.save()

    assert not selectors.case_list(user=auditor).exists()


def test_an_owner_lists_only_evidence_of_cases_they_see(three_cases, analyst, owner):
    owned, _concerning, foreign = three_cases
    mine = services.evidence_capture(actor=analyst, case_id=owned.pk, kind="note", title="a", note="a")
    services.evidence_capture(actor=analyst, case_id=foreign.pk, kind="note", title="b", note="b")

    assert list(selectors.evidence_list(user=owner)) == [mine]
