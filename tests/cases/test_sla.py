"""Service levels: each severity's due date, and the escalation of open cases that pass it (frozen time)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from cases import services
from cases.errors import CaseWorkflowError, TransitionConflict
from cases.models import Case, CaseState, Comment, Severity, SlaPolicy
from cases.sla import sla_policy_update
from cases.sweeps import overdue_cases_escalate
from portal import roles
from tests.factories import NonHumanIdentityFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOURS = {Severity.CRITICAL: 24, Severity.HIGH: 72, Severity.MEDIUM: 7 * 24, Severity.LOW: 30 * 24}


@pytest.fixture
def automation(role_groups):
    return roles.automation_user()


@pytest.fixture
def lead(payments):
    person = UserFactory.create(username="payments-lead", email="lead@payments.example.test")
    payments.lead = person
    payments.save()
    return person


@pytest.fixture
def frozen():
    with time_machine.travel(OPENED, tick=False) as traveller:
        yield traveller


def escalations_of(case):
    return Case.history.filter(id=case.pk, history_change_reason__startswith="escalated").count()


# --- Due dates ----------------------------------------------------------------------------------------------


def test_the_default_policies_come_from_the_migration():
    assert {policy.severity: policy.hours_to_resolve for policy in SlaPolicy.objects.all()} == HOURS
    assert all(policy.is_active for policy in SlaPolicy.objects.all())


@pytest.mark.parametrize("severity", list(HOURS))
def test_it_gives_a_new_case_the_due_date_of_its_severity(open_case, frozen, severity):
    case = open_case(severity=severity)

    assert case.due_at == OPENED + timedelta(hours=HOURS[severity])
    assert case.due_at_set_by_hand is False


def test_it_keeps_a_due_date_given_when_the_case_opens(analyst, frozen):
    due = OPENED + timedelta(days=2)

    case = services.case_open(actor=analyst, title="Key leak", kind="secret_exposure", severity=4, due_at=due)

    assert case.due_at == due
    assert case.due_at_set_by_hand is True


def test_a_severity_change_recomputes_the_due_date_from_the_opening(open_case, analyst, frozen):
    case = open_case(severity=Severity.MEDIUM)
    frozen.shift(timedelta(hours=5))

    services.case_update(actor=analyst, case_id=case.pk, changes={"severity": Severity.CRITICAL})

    assert Case.objects.get(pk=case.pk).due_at == OPENED + timedelta(hours=24)


def test_a_severity_change_leaves_a_due_date_set_by_hand(open_case, analyst, frozen):
    case = open_case(severity=Severity.MEDIUM)
    by_hand = OPENED + timedelta(days=3)
    services.case_update(actor=analyst, case_id=case.pk, changes={"due_at": by_hand})

    services.case_update(actor=analyst, case_id=case.pk, changes={"severity": Severity.CRITICAL})

    case.refresh_from_db()
    assert (case.due_at, case.due_at_set_by_hand) == (by_hand, True)


def test_clearing_the_due_date_by_hand_gives_it_back_to_the_sla(open_case, analyst, frozen):
    case = open_case(severity=Severity.HIGH)
    services.case_update(actor=analyst, case_id=case.pk, changes={"due_at": OPENED + timedelta(days=30)})

    services.case_update(actor=analyst, case_id=case.pk, changes={"due_at": None})

    case.refresh_from_db()
    assert (case.due_at, case.due_at_set_by_hand) == (OPENED + timedelta(hours=72), False)


def test_a_severity_without_an_active_policy_gives_no_due_date(open_case, frozen):
    SlaPolicy.objects.filter(severity=Severity.LOW).update(is_active=False)

    assert open_case(severity=Severity.LOW).due_at is None


# --- Escalation ---------------------------------------------------------------------------------------------


def test_nothing_escalates_before_the_due_date(open_case, automation, lead, frozen):
    case = open_case(severity=Severity.CRITICAL)
    frozen.move_to(OPENED + timedelta(hours=24) - timedelta(seconds=1))

    assert overdue_cases_escalate(actor=automation) == 0
    assert Case.objects.get(pk=case.pk).escalated_at is None
    assert mail.outbox == []


def test_an_overdue_case_is_flagged_with_a_history_entry_and_a_comment(open_case, automation, lead, frozen):
    case = open_case(severity=Severity.CRITICAL)
    frozen.move_to(OPENED + timedelta(hours=25))

    assert overdue_cases_escalate(actor=automation) == 1

    case.refresh_from_db()
    assert case.escalated_at == OPENED + timedelta(hours=25)
    entry = Case.history.filter(id=case.pk).latest("history_date")
    assert entry.history_change_reason == "escalated: overdue since 2026-03-03 09:00 UTC"
    assert entry.history_user == automation
    comment = Comment.objects.get(case=case)
    assert comment.author == automation
    assert "due on 2026-03-03 09:00 UTC" in comment.body
    assert "Emailing payments-lead (lead of Payments)." in comment.body


def test_the_team_lead_is_emailed_once_whatever_the_number_of_sweeps(
    open_case, automation, lead, frozen, django_capture_on_commit_callbacks
):
    case = open_case(severity=Severity.HIGH)
    case.summary = "context: AKIAIOSFODNN7EXAMPLE"  # whatever a summary holds stays out of the email
    Case.objects.filter(pk=case.pk).update(summary=case.summary)
    frozen.move_to(OPENED + timedelta(hours=73))

    with django_capture_on_commit_callbacks(execute=True):
        first = overdue_cases_escalate(actor=automation)
    with django_capture_on_commit_callbacks(execute=True):
        second = overdue_cases_escalate(actor=automation)

    assert (first, second) == (1, 0)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["lead@payments.example.test"]
    assert case.reference in email.subject
    assert case.reference in email.body
    assert "AKIA" not in email.body
    assert escalations_of(case) == 1
    assert Comment.objects.filter(case=case).count() == 1
    assert Case.objects.get(pk=case.pk).escalation_notified_at is not None


def test_without_an_owning_team_the_leads_of_the_identities_teams_are_emailed(
    analyst, automation, lead, payments, frozen
):
    other_lead = UserFactory.create(username="platform-lead", email="lead@platform.example.test")
    platform = TeamFactory.create(name="Platform", slug="platform", lead=other_lead)
    identities = [
        NonHumanIdentityFactory.create(owner_team=payments),
        NonHumanIdentityFactory.create(owner_team=platform),
    ]
    services.case_open(actor=analyst, title="Shared key", kind="secret_exposure", identities=identities)
    frozen.move_to(OPENED + timedelta(days=8))

    overdue_cases_escalate(actor=automation)

    assert [email.to for email in mail.outbox] == [
        ["lead@payments.example.test", "lead@platform.example.test"]
    ]


def test_a_team_without_a_lead_is_reached_at_its_contact_address(open_case, automation, payments, frozen):
    payments.contact_email = "payments-oncall@example.test"
    payments.save()
    case = open_case(severity=Severity.CRITICAL)
    frozen.move_to(OPENED + timedelta(days=2))

    overdue_cases_escalate(actor=automation)

    assert [email.to for email in mail.outbox] == [["payments-oncall@example.test"]]
    assert "Payments's contact" in Comment.objects.get(case=case).body


def test_an_email_the_mail_server_refused_is_sent_by_the_next_sweep(
    open_case, automation, lead, frozen, monkeypatch
):
    case = open_case(severity=Severity.CRITICAL)
    frozen.move_to(OPENED + timedelta(days=2))

    def refuse(self, messages):
        raise ConnectionRefusedError("mail server down")

    with monkeypatch.context() as patch:
        patch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse)
        assert overdue_cases_escalate(actor=automation) == 1
    assert Case.objects.get(pk=case.pk).escalated_at is not None  # the escalation itself stands
    assert mail.outbox == []

    assert overdue_cases_escalate(actor=automation) == 0

    assert len(mail.outbox) == 1
    assert escalations_of(case) == 1


@pytest.mark.parametrize("state", [CaseState.CLOSED, CaseState.DISMISSED])
def test_settled_cases_are_not_escalated(case_in_state, automation, lead, frozen, state):
    case_in_state(state, severity=Severity.LOW)
    frozen.move_to(OPENED + timedelta(days=60))

    assert overdue_cases_escalate(actor=automation) == 0
    assert mail.outbox == []


def test_every_open_state_escalates(case_in_state, automation, lead, frozen):
    cases = [case_in_state(state) for state in (CaseState.IDENTIFIED, CaseState.ASSIGNED, CaseState.VERIFIED)]
    frozen.move_to(OPENED + timedelta(days=8))

    assert overdue_cases_escalate(actor=automation) == 3
    assert all(Case.objects.get(pk=case.pk).escalated_at for case in cases)


def test_case_escalate_refuses_a_case_not_yet_due_or_already_escalated(open_case, automation, lead, frozen):
    case = open_case(severity=Severity.CRITICAL)

    with pytest.raises(CaseWorkflowError, match="not past its due date"):
        services.case_escalate(actor=automation, case_id=case.pk)

    frozen.move_to(OPENED + timedelta(days=2))
    services.case_escalate(actor=automation, case_id=case.pk)
    with pytest.raises(TransitionConflict, match="already escalated"):
        services.case_escalate(actor=automation, case_id=case.pk)
    assert escalations_of(case) == 1


@pytest.mark.parametrize("persona_name", ["analyst", "approver", "auditor", "owner"])
def test_only_the_portal_s_own_account_escalates(open_case, persona, frozen, persona_name):
    case = open_case(severity=Severity.CRITICAL)
    frozen.move_to(OPENED + timedelta(days=2))

    with pytest.raises(PermissionDenied, match=r"cases\.escalate_case"):
        services.case_escalate(actor=persona(persona_name), case_id=case.pk)


def test_a_reopened_case_starts_a_new_sla_and_can_escalate_again(
    case_in_state, analyst, automation, lead, frozen
):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.CRITICAL)
    frozen.move_to(OPENED + timedelta(days=2))
    overdue_cases_escalate(actor=automation)

    services.case_reopen(case_id=case.pk, actor=analyst, reason="the key is still live")

    case.refresh_from_db()
    assert case.escalated_at is None
    assert case.due_at == OPENED + timedelta(days=2, hours=24)
    frozen.move_to(OPENED + timedelta(days=3, hours=1))
    assert overdue_cases_escalate(actor=automation) == 1
    assert len(mail.outbox) == 2


def test_moving_the_due_date_into_the_future_watches_the_new_date(
    open_case, analyst, automation, lead, frozen
):
    case = open_case(severity=Severity.CRITICAL)
    frozen.move_to(OPENED + timedelta(days=2))
    overdue_cases_escalate(actor=automation)

    new_date = OPENED + timedelta(days=3)
    services.case_update(actor=analyst, case_id=case.pk, changes={"due_at": new_date}, reason="vendor fix")

    assert Case.objects.get(pk=case.pk).escalated_at is None
    frozen.move_to(new_date + timedelta(minutes=1))
    assert overdue_cases_escalate(actor=automation) == 1
    assert escalations_of(case) == 2


# --- The policies: edited through the service (and the admin) -----------------------------------------------


def test_an_analyst_changes_a_policy_with_a_history_entry(analyst):
    policy = SlaPolicy.objects.get(severity=Severity.CRITICAL)

    sla_policy_update(actor=analyst, policy_id=policy.pk, hours_to_resolve=12, is_active=True, reason="audit")

    policy.refresh_from_db()
    assert policy.hours_to_resolve == 12
    entry = policy.history.latest("history_date")
    assert (entry.history_user, entry.history_change_reason) == (analyst, "24 h → 12 h: audit")


def test_a_changed_policy_applies_to_cases_opened_afterwards(open_case, analyst, frozen):
    before = open_case(severity=Severity.CRITICAL)
    policy = SlaPolicy.objects.get(severity=Severity.CRITICAL)
    sla_policy_update(actor=analyst, policy_id=policy.pk, hours_to_resolve=4, is_active=True)

    after = open_case(severity=Severity.CRITICAL)

    assert Case.objects.get(pk=before.pk).due_at == OPENED + timedelta(hours=24)
    assert after.due_at == OPENED + timedelta(hours=4)


@pytest.mark.parametrize("hours", [0, -1, 366 * 24 + 1])
def test_a_policy_refuses_hours_out_of_range_naming_the_field(analyst, hours):
    policy = SlaPolicy.objects.get(severity=Severity.HIGH)

    with pytest.raises(ValidationError) as refusal:
        sla_policy_update(actor=analyst, policy_id=policy.pk, hours_to_resolve=hours, is_active=True)

    assert "hours_to_resolve" in refusal.value.message_dict
    assert SlaPolicy.objects.get(pk=policy.pk).hours_to_resolve == 72


@pytest.mark.parametrize("persona_name", ["approver", "auditor", "owner", "outsider"])
def test_other_personas_cannot_change_a_policy(persona, persona_name):
    policy = SlaPolicy.objects.get(severity=Severity.HIGH)

    with pytest.raises(PermissionDenied, match=r"cases\.change_slapolicy"):
        sla_policy_update(
            actor=persona(persona_name), policy_id=policy.pk, hours_to_resolve=1, is_active=True
        )


def policy_url(policy, view="change"):
    if view == "changelist":
        return reverse("admin:cases_slapolicy_changelist")
    return reverse(f"admin:cases_slapolicy_{view}", args=(policy.pk,))


def test_an_analyst_edits_a_policy_in_the_admin(client, analyst):
    policy = SlaPolicy.objects.get(severity=Severity.MEDIUM)
    client.force_login(analyst)

    response = client.post(policy_url(policy), {"hours_to_resolve": "120", "is_active": "on"})

    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.hours_to_resolve == 120
    assert policy.history.latest("history_date").history_user == analyst


def test_the_admin_form_names_a_bad_duration_and_changes_nothing(client, analyst):
    policy = SlaPolicy.objects.get(severity=Severity.MEDIUM)
    client.force_login(analyst)

    response = client.post(policy_url(policy), {"hours_to_resolve": "0", "is_active": "on"})

    assert response.status_code == 200
    assert "hours_to_resolve" in response.context["adminform"].form.errors
    assert SlaPolicy.objects.get(pk=policy.pk).hours_to_resolve == 168


@pytest.mark.parametrize(("persona_name", "listed"), [("analyst", 200), ("auditor", 200), ("owner", 403)])
def test_who_sees_the_policies_in_the_admin(client, persona, persona_name, listed):
    client.force_login(persona(persona_name))

    assert client.get(policy_url(None, "changelist")).status_code == listed


def test_the_auditor_may_read_a_policy_but_not_change_it(client, auditor):
    policy = SlaPolicy.objects.get(severity=Severity.MEDIUM)
    client.force_login(auditor)

    assert client.get(policy_url(policy)).status_code == 200
    assert client.post(policy_url(policy), {"hours_to_resolve": "1", "is_active": "on"}).status_code == 403
    assert SlaPolicy.objects.get(pk=policy.pk).hours_to_resolve == 168


def test_policies_are_neither_added_nor_deleted_in_the_admin(client, analyst):
    client.force_login(analyst)
    policy = SlaPolicy.objects.get(severity=Severity.LOW)

    assert client.get(reverse("admin:cases_slapolicy_add")).status_code == 403
    assert client.post(policy_url(policy, "delete"), {"post": "yes"}).status_code == 403


def test_the_case_list_filters_escalated_cases(client, open_case, analyst, automation, lead, frozen):
    late = open_case(severity=Severity.CRITICAL)
    on_time = open_case(severity=Severity.LOW)
    frozen.move_to(OPENED + timedelta(days=2))
    overdue_cases_escalate(actor=automation)
    client.force_login(analyst)

    def listed(value):
        response = client.get(reverse("admin:cases_case_changelist"), {"escalated": value})
        return {case.pk for case in response.context["cl"].result_list}

    assert listed("yes") == {late.pk}
    assert listed("no") == {on_time.pk}
