"""Owner reminders: the cadence on a frozen clock, escalation to the team lead, idempotency, no leaks.

Defaults: reminded 3 days into the wait and 3 days later (2 reminders), the lead told 3 days after that.
"""

import io
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core import mail
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from findings.models import AnswerLink, AttributionRule, Exposure, ExposureState, OwnerReminder
from findings.reminders import ReminderSummary, owner_reminders_send
from findings.services import Answer, exposure_answer, exposure_attribute, findings_import
from findings.tasks import remind_owners
from nhi_inventory.fingerprints import fingerprint_secret
from nhi_inventory.models import Team
from portal.celery import app
from tests.factories import UserFactory
from tests.findings.conftest import MakeExposure
from tests.findings.reports import AWS_SECRET, gitleaks_v8
from tests.threads import in_own_connection

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINK = re.compile(r"https?://\S+/owner/exposures/(\d+)/answer/(\S+)/")


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def payments_lead(payments: Team) -> Any:
    lead = UserFactory.create(username="payments-lead", first_name="Lee", is_staff=False)
    payments.lead = lead
    payments.save()
    return lead


@pytest.fixture
def platform_lead(platform: Team) -> Any:
    lead = UserFactory.create(username="platform-lead", first_name="Plato", is_staff=False)
    platform.lead = lead
    platform.save()
    return lead


Sweep = Callable[..., ReminderSummary]


@pytest.fixture
def sweep(clock: Any, django_capture_on_commit_callbacks: Any) -> Sweep:
    """Run the sweep `days` after T0 and send what it queued once its transaction commits."""

    def run(days: float) -> ReminderSummary:
        clock.move_to(T0 + timedelta(days=days))
        with django_capture_on_commit_callbacks(execute=True):
            return owner_reminders_send()

    return run


@pytest.fixture
def exposure(
    clock: Any, owner: Any, payments_lead: Any, payments_identity: Any, make_exposure: MakeExposure
) -> Exposure:
    return make_exposure(payments_identity)


def reminders_to(person: Any) -> list[Any]:
    return [
        m for m in mail.outbox if m.to == [person.email] and m.subject.startswith("[NHI portal] Reminder")
    ]


def escalations_to(person: Any) -> list[Any]:
    return [m for m in mail.outbox if m.to == [person.email] and "Escalation" in m.subject]


def linked_exposures(message: Any) -> set[int]:
    return {int(exposure_id) for exposure_id, _ in LINK.findall(str(message.body))}


def reasons(exposure: Exposure) -> list[str]:
    return list(
        exposure.history.order_by("history_date", "history_id").values_list(
            "history_change_reason", flat=True
        )
    )


# --- The cadence --------------------------------------------------------------------------------------------


def test_it_reminds_nobody_before_the_interval_has_passed(
    exposure: Exposure, owner: Any, sweep: Sweep
) -> None:
    summary = sweep(days=3 - 1 / 24)

    assert summary.reminded == 0
    assert mail.outbox == []
    assert not OwnerReminder.objects.exists()


def test_it_sends_the_first_reminder_after_the_interval(exposure: Exposure, owner: Any, sweep: Sweep) -> None:
    summary = sweep(days=3)

    [message] = reminders_to(owner)
    assert linked_exposures(message) == {exposure.pk}
    assert "reminder 1 of 2" in message.body
    assert (summary.reminded, summary.owner_emails) == (1, 1)
    reminder = OwnerReminder.objects.get(exposure=exposure)
    assert (reminder.reminders_sent, reminder.last_reminded_at, reminder.waiting_since) == (
        1,
        T0 + timedelta(days=3),
        T0,
    )
    assert reasons(exposure)[-1] == "owner reminder 1 of 2: emailed to 1 owner(s)"


def test_it_sends_the_second_reminder_one_interval_after_the_first(
    exposure: Exposure, owner: Any, sweep: Sweep
) -> None:
    sweep(days=3)
    assert sweep(days=6 - 1 / 24).reminded == 0

    sweep(days=6)

    first, second = reminders_to(owner)
    assert "reminder 1 of 2" in first.body
    assert "reminder 2 of 2" in second.body
    assert OwnerReminder.objects.get().reminders_sent == 2


def test_it_tells_the_lead_once_after_the_last_reminder(
    exposure: Exposure, owner: Any, payments_lead: Any, sweep: Sweep
) -> None:
    sweep(days=3)
    sweep(days=6)
    assert sweep(days=9 - 1 / 24).escalated == 0

    summary = sweep(days=9)
    for later in (12, 15, 30):
        assert sweep(days=later) == ReminderSummary()

    [escalation] = escalations_to(payments_lead)
    assert exposure.preview in escalation.body
    assert "Payments" in escalation.subject
    assert (summary.escalated, summary.lead_emails, summary.reminded) == (1, 1, 0)
    assert len(reminders_to(owner)) == 2  # the owners' reminders stop at the escalation
    reminder = OwnerReminder.objects.get()
    assert (reminder.escalated_at, reminder.escalated_to) == (T0 + timedelta(days=9), payments_lead)
    assert reasons(exposure)[-1] == "escalated to payments-lead, lead of Payments, after 2 reminder(s)"


def test_an_answered_exposure_is_not_reminded(
    exposure: Exposure, owner: Any, clock: Any, sweep: Sweep
) -> None:
    sweep(days=3)
    clock.move_to(T0 + timedelta(days=4))
    exposure_answer(actor=owner, exposure_id=exposure.pk, answer=Answer.CONFIRM)

    for later in (6, 9, 12):
        assert sweep(days=later) == ReminderSummary()
    assert len(reminders_to(owner)) == 1


def test_the_settings_set_the_interval_and_the_number_of_reminders(
    exposure: Exposure, owner: Any, payments_lead: Any, sweep: Sweep, settings: Any
) -> None:
    settings.FINDINGS_REMINDER_EVERY_DAYS = 1
    settings.FINDINGS_REMINDERS_BEFORE_ESCALATION = 0

    summary = sweep(days=1)

    assert (summary.reminded, summary.escalated) == (0, 1)
    assert reminders_to(owner) == []
    assert len(escalations_to(payments_lead)) == 1


# --- New waits: regressions and hand-overs ----------------------------------------------------------------


def run_import(actor: Any, *places: str) -> None:
    findings_import(
        actor=actor,
        report_format="gitleaks",
        source="acme/payments",
        stream=io.BytesIO(gitleaks_v8(*({"Secret": AWS_SECRET, "File": place} for place in places))),
        file_name="report.json",
    )


@pytest.fixture
def imported(
    clock: Any,
    analyst: Any,
    owner: Any,
    payments_lead: Any,
    payments_identity: Any,
    django_capture_on_commit_callbacks: Any,
) -> Exposure:
    """The planted secret, imported at T0 and attributed to the Payments identity (its owners are emailed)."""
    AttributionRule.objects.create(repository_pattern="acme/payments", nhi=payments_identity)
    with django_capture_on_commit_callbacks(execute=True):
        run_import(analyst, "deploy/prod.env")
    return Exposure.objects.get()


def test_a_regressed_exposure_is_reminded_again_from_its_regression(
    imported: Exposure, analyst: Any, owner: Any, payments_lead: Any, clock: Any, sweep: Sweep
) -> None:
    for day in (3, 6, 9):
        sweep(days=day)
    clock.move_to(T0 + timedelta(days=10))
    exposure_answer(
        actor=owner,
        exposure_id=imported.pk,
        answer=Answer.REMEDIATED,
        remediation="rotated",
        remediated_at=timezone.now() - timedelta(hours=1),
    )
    clock.move_to(T0 + timedelta(days=20))
    run_import(analyst, "deploy/prod.env", "app/settings.py")  # seen in a new place: a regression
    imported.refresh_from_db()
    assert imported.state == ExposureState.REGRESSED

    assert sweep(days=23 - 1 / 24) == ReminderSummary()
    third = sweep(days=23)
    fourth = sweep(days=26)
    again = sweep(days=29)

    assert (third.reminded, fourth.reminded, again.escalated) == (1, 1, 1)
    assert len(reminders_to(owner)) == 4
    assert "reminder 1 of 2" in reminders_to(owner)[2].body
    assert len(escalations_to(payments_lead)) == 2  # once per wait
    reminder = OwnerReminder.objects.get()
    assert (reminder.waiting_since, reminder.reminders_sent) == (T0 + timedelta(days=20), 2)


def test_an_exposure_handed_to_another_team_is_reminded_to_its_new_owners_from_then(
    exposure: Exposure,
    owner: Any,
    analyst: Any,
    platform_owner: Any,
    platform_identity: Any,
    clock: Any,
    sweep: Sweep,
) -> None:
    sweep(days=3)
    clock.move_to(T0 + timedelta(days=4))
    exposure_attribute(actor=analyst, exposure_id=exposure.pk, nhi_id=platform_identity.pk)

    assert sweep(days=6) == ReminderSummary()  # the old wait's second reminder is not due for anyone
    sweep(days=7)

    assert len(reminders_to(owner)) == 1
    [message] = reminders_to(platform_owner)
    assert linked_exposures(message) == {exposure.pk}
    assert "reminder 1 of 2" in message.body


# --- Idempotency ------------------------------------------------------------------------------------------


def test_running_twice_the_same_day_sends_nothing_twice(exposure: Exposure, owner: Any, sweep: Sweep) -> None:
    first = sweep(days=3)
    links = AnswerLink.objects.count()
    history = exposure.history.count()

    second = sweep(days=3 + 8 / 24)

    assert (first.reminded, second) == (1, ReminderSummary())
    assert len(mail.outbox) == 1
    assert (AnswerLink.objects.count(), exposure.history.count()) == (links, history)


def test_the_task_delivered_twice_sends_nothing_twice(
    exposure: Exposure, owner: Any, payments_lead: Any, clock: Any, django_capture_on_commit_callbacks: Any
) -> None:
    clock.move_to(T0 + timedelta(days=3))
    with django_capture_on_commit_callbacks(execute=True):
        first = remind_owners.delay().get()
        second = remind_owners.delay().get()

    assert (first["reminded"], first["owner_emails"]) == (1, 1)
    assert second == ReminderSummary().as_dict()
    assert len(mail.outbox) == 1


@pytest.fixture
def worker(transactional_db: None) -> Iterator[list[Any]]:
    """Celery's in-process test worker on the memory broker: the task travels as a JSON message, and the
    return values of the runs are collected (as in tests/portal/test_celery.py)."""
    finished: list[Any] = []

    def record(task: Any = None, retval: Any = None, **kwargs: Any) -> None:
        if task is not None and task.name == remind_owners.name:
            finished.append(retval)

    task_postrun.connect(record, weak=False)
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield finished
    finally:
        app.conf.task_always_eager = True
        task_postrun.disconnect(record)


def test_the_task_through_celerys_test_worker_delivered_twice_reminds_once(
    worker: list[Any],
    clock: Any,
    owner: Any,
    payments_lead: Any,
    payments_identity: Any,
    make_exposure: MakeExposure,
) -> None:
    make_exposure(payments_identity)
    clock.move_to(T0 + timedelta(days=3))

    remind_owners.delay()
    remind_owners.delay()  # as a redelivery would
    deadline = time.monotonic() + 30
    while len(worker) < 2:
        assert time.monotonic() < deadline, "the worker did not run the task twice"
        time.sleep(0.05)
    first, second = worker

    assert (first["reminded"], first["owner_emails"]) == (1, 1)
    assert second == ReminderSummary().as_dict()
    assert len(reminders_to(owner)) == 1


def test_the_task_runs_the_sweep_as_of_the_date_it_is_given(
    exposure: Exposure, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        early = remind_owners.delay(as_of=(T0 + timedelta(days=2)).isoformat()).get()
        due = remind_owners.delay(as_of=(T0 + timedelta(days=4)).date().isoformat()).get()  # midnight

    assert (early["reminded"], due["reminded"]) == (0, 1)


def test_an_email_is_sent_only_once_the_sweep_has_committed(
    exposure: Exposure, owner: Any, clock: Any
) -> None:
    clock.move_to(T0 + timedelta(days=3))
    with transaction.atomic():
        owner_reminders_send()
        transaction.set_rollback(True)  # as if the worker died before the commit

    assert mail.outbox == []
    assert not OwnerReminder.objects.exists()


# --- Who receives what ------------------------------------------------------------------------------------


def test_each_owner_gets_one_email_with_their_own_teams_exposures_only(
    clock: Any,
    owner: Any,
    platform_owner: Any,
    analyst: Any,
    payments_lead: Any,
    platform_lead: Any,
    payments_identity: Any,
    platform_identity: Any,
    make_exposure: MakeExposure,
    sweep: Sweep,
) -> None:
    ours = {make_exposure(payments_identity).pk for _ in range(3)}
    theirs = {make_exposure(platform_identity).pk for _ in range(2)}

    for day in (3, 6, 9):
        sweep(days=day)

    assert {tuple(m.to) for m in mail.outbox} == {
        (owner.email,),
        (platform_owner.email,),
        (payments_lead.email,),
        (platform_lead.email,),
    }
    assert [linked_exposures(m) for m in reminders_to(owner)] == [ours, ours]
    assert [linked_exposures(m) for m in reminders_to(platform_owner)] == [theirs, theirs]
    [to_payments_lead] = escalations_to(payments_lead)
    for exposure in Exposure.objects.filter(pk__in=theirs):
        assert exposure.preview not in to_payments_lead.body
    for exposure in Exposure.objects.filter(pk__in=ours):
        assert exposure.preview in to_payments_lead.body


def test_a_reminders_link_answers_and_the_owners_earlier_link_stops_working(
    imported: Exposure, owner: Any, client: Client, sweep: Sweep
) -> None:
    [digest] = [m for m in mail.outbox if m.to == [owner.email]]
    ((_, earlier),) = LINK.findall(str(digest.body))
    sweep(days=3)
    [reminder] = reminders_to(owner)
    ((_, token),) = LINK.findall(str(reminder.body))

    refused = client.get(answer_path(imported, earlier))
    response = client.post(answer_path(imported, token), {"answer": Answer.CONFIRM})

    assert refused.status_code == 403
    assert "expired" in str(refused.context["reason"])
    assert response.status_code == 200
    imported.refresh_from_db()
    assert (imported.state, imported.answered_by) == (ExposureState.CONFIRMED, owner)


def answer_path(exposure: Exposure, token: str) -> str:
    return reverse("findings:answer_link", kwargs={"exposure_id": exposure.pk, "token": token})


def test_a_team_without_a_lead_is_escalated_once_it_has_one(
    clock: Any, owner: Any, payments: Team, payments_identity: Any, make_exposure: MakeExposure, sweep: Sweep
) -> None:
    exposure = make_exposure(payments_identity)
    sweep(days=3)
    sweep(days=6)

    leaderless = sweep(days=9)
    lead = UserFactory.create(username="new-lead")
    payments.lead = lead
    payments.save()
    told = sweep(days=9.5)

    assert (leaderless.without_lead, leaderless.escalated, told.escalated) == (1, 0, 1)
    assert len(escalations_to(lead)) == 1
    assert OwnerReminder.objects.get(exposure=exposure).escalated_to == lead


def test_an_exposure_with_nobody_to_email_still_reaches_the_lead(
    clock: Any, payments_lead: Any, payments_identity: Any, make_exposure: MakeExposure, sweep: Sweep
) -> None:
    exposure = make_exposure(payments_identity)  # the Payments team has no member here

    first = sweep(days=3)
    sweep(days=6)
    sweep(days=9)

    assert (first.reminded, first.without_owner, first.owner_emails) == (1, 1, 0)
    assert len(escalations_to(payments_lead)) == 1
    assert "owner reminder 1 of 2: no owner to email" in reasons(exposure)


# --- No secret, bounded queries, the admin ---------------------------------------------------------------


def test_emails_carry_previews_and_links_never_the_secret(
    imported: Exposure, owner: Any, payments_lead: Any, sweep: Sweep
) -> None:
    results = [sweep(days=day).as_dict() for day in (3, 6, 9)]

    assert len(reminders_to(owner)) == 2
    assert len(escalations_to(payments_lead)) == 1
    fingerprint = fingerprint_secret(AWS_SECRET)
    for message in mail.outbox:
        text = f"{message.subject}\n{message.body}"
        assert AWS_SECRET not in text
        assert AWS_SECRET[:8] not in text
        assert fingerprint.value not in text
        assert imported.fingerprint == fingerprint.value  # the planted secret is this exposure's
    assert all(imported.preview in m.body for m in [*reminders_to(owner), *escalations_to(payments_lead)])
    assert AWS_SECRET not in str(results)


def sweep_queries(
    exposures_per_team: int, make_exposure: MakeExposure, identities: list[Any]
) -> tuple[int, int]:
    """Queries of the first reminder sweep and of the escalation sweep, undone afterwards."""
    with transaction.atomic():
        with time_machine.travel(T0, tick=False) as traveller:
            for identity in identities:
                for _ in range(exposures_per_team):
                    make_exposure(identity)
            counts = []
            for day in (3, 6, 9):
                traveller.move_to(T0 + timedelta(days=day))
                with CaptureQueriesContext(connection) as captured:
                    summary = owner_reminders_send()
                assert summary.reminded + summary.escalated == exposures_per_team * len(identities)
                counts.append(len(captured))
        transaction.set_rollback(True)
    return counts[0], counts[2]


def test_the_sweeps_queries_grow_with_the_people_emailed_not_the_exposures(
    owner: Any,
    platform_owner: Any,
    payments_lead: Any,
    platform_lead: Any,
    payments_identity: Any,
    platform_identity: Any,
    make_exposure: MakeExposure,
) -> None:
    identities = [payments_identity, platform_identity]
    sweep_queries(1, make_exposure, identities)  # warm per-process caches (content types, groups)

    few = sweep_queries(2, make_exposure, identities)
    many = sweep_queries(12, make_exposure, identities)

    assert few == many
    reminding, escalating = many
    assert reminding <= 20  # two owners: the sweep, their permissions, their links
    assert escalating <= 12  # two leads


def test_the_admin_shows_and_filters_the_reminders(
    exposure: Exposure, analyst: Any, client: Client, payments_lead: Any, sweep: Sweep
) -> None:
    for day in (3, 6, 9):
        sweep(days=day)
    client.force_login(analyst)
    url = reverse("admin:findings_exposure_changelist")

    escalated = client.get(url, {"reminders": "escalated"})
    never = client.get(url, {"reminders": "none"})
    history = client.get(reverse("admin:findings_exposure_history", args=[exposure.pk]))
    change = client.get(reverse("admin:findings_exposure_change", args=[exposure.pk]))

    assert [row.pk for row in escalated.context["cl"].result_list] == [exposure.pk]
    assert list(never.context["cl"].result_list) == []
    assert "payments-lead" in escalated.content.decode()
    assert "escalated to payments-lead" in history.content.decode()
    assert "2, last 2026-03-08" in change.content.decode()


# --- PostgreSQL: two sweeps at once -----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_reminder_once(
    clock: Any, owner: Any, payments_lead: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    for _ in range(3):
        make_exposure(payments_identity)
    clock.move_to(T0 + timedelta(days=3))
    first_holds_its_locks = threading.Barrier(2, timeout=10)

    def first() -> ReminderSummary:
        with transaction.atomic():
            summary = owner_reminders_send()
            first_holds_its_locks.wait()
            time.sleep(0.3)  # the second sweep runs while this one holds its rows
            return summary

    def second() -> ReminderSummary:
        first_holds_its_locks.wait()
        return owner_reminders_send()

    (thread_a, a), (thread_b, b) = in_own_connection(first), in_own_connection(second)
    thread_a.join(15)
    thread_b.join(15)

    assert "error" not in a, a
    assert "error" not in b, b
    assert (a["result"].reminded, b["result"]) == (3, ReminderSummary())
    assert len(reminders_to(owner)) == 1
    assert list(OwnerReminder.objects.values_list("reminders_sent", flat=True)) == [1, 1, 1]
