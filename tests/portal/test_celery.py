"""The Celery set-up: the beat schedule, the reliability settings, the case jobs through a real worker.

Eager mode (the rest of the suite) hides serialisation and transaction bugs, so each case job runs here
through Celery's in-process test worker (`celery.contrib.testing.worker.start_worker`, the memory broker,
JSON messages), each twice, as a redelivery would. The single-machine mode of `make run` (a worker with an
embedded beat on the filesystem transport, no Redis) is run for real as a separate process.
"""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.utils import timezone

from cases import services
from cases.models import Case, CaseState, Comment, ReportSnapshot, Severity, SlaPolicy
from cases.tasks import escalate_overdue_cases, reopen_expired_risk_acceptances, snapshot_alignment_reports
from frameworks.services import CATALOG_DIR, catalog_load
from handoffs.sending import MAX_BACKOFF_SECONDS
from portal.celery import BEAT_SCHEDULE, app
from tests.factories import UserFactory
from tests.portal import workers

CASE_JOBS = (
    "cases.tasks.escalate_overdue_cases",
    "cases.tasks.reopen_expired_risk_acceptances",
    "cases.tasks.snapshot_alignment_reports",
)


# --- The schedule and the reliability settings --------------------------------------------------------------


def test_beat_schedules_the_case_jobs_and_the_other_apps_sweeps():
    scheduled = {entry["task"] for entry in BEAT_SCHEDULE.values()}

    assert scheduled == {
        *CASE_JOBS,
        "findings.jobs.expire_ingest_jobs",
        "findings.tasks.remind_owners",
        "handoffs.tasks.handoff_sweep",
        "audit.tasks.verify_audit_trail",
    }
    assert app.conf.beat_schedule == BEAT_SCHEDULE


def test_every_scheduled_task_exists_in_a_worker_and_is_safe_to_redeliver():
    app.loader.import_default_modules()  # what a worker imports when it starts

    for entry in BEAT_SCHEDULE.values():
        task = app.tasks[entry["task"]]  # KeyError: the worker would drop the message as unregistered
        assert task.acks_late is True, f"{task.name} is scheduled but not acks_late"


def test_only_tasks_that_opt_in_are_acknowledged_late_and_requeued_when_their_worker_dies():
    assert settings.CELERY_TASK_ACKS_LATE is False
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert all(app.tasks[name].acks_late for name in CASE_JOBS)


def test_the_redis_visibility_timeout_outlasts_the_longest_retry_countdown():
    # A countdown longer than the visibility timeout would be delivered a second time while it waits.
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert isinstance(timeout, int)
    assert timeout > MAX_BACKOFF_SECONDS


def test_messages_are_json_so_no_object_travels_in_a_task():
    assert (app.conf.task_serializer, app.conf.accept_content) == ("json", ["json"])


# --- Each case job through the in-process test worker, delivered twice --------------------------------------


@pytest.fixture
def worker(transactional_db):
    """Celery's test worker in a thread, on the memory broker: tasks are sent as messages, not called."""
    finished: list[tuple[str, object]] = []

    def record(sender=None, task=None, retval=None, **kwargs):
        finished.append((task.name, retval))

    task_postrun.connect(record, weak=False)
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield finished
    finally:
        app.conf.task_always_eager = True
        task_postrun.disconnect(record)


def deliver_twice(task, finished):
    """Send the task twice, as a redelivery would, and return what each run returned."""
    start = len(finished)
    task.delay()
    task.delay()
    deadline = time.monotonic() + 30
    while len(finished) < start + 2:
        assert time.monotonic() < deadline, "the worker did not run the task twice"
        time.sleep(0.05)
    return [retval for _, retval in finished[start:]]


@pytest.fixture
def sla_policies(transactional_db):
    # Transactional tests flush the rows the migrations created.
    for severity, hours in ((4, 24), (3, 72), (2, 168), (1, 720)):
        SlaPolicy.objects.get_or_create(severity=severity, defaults={"hours_to_resolve": hours})


def test_escalation_runs_in_a_worker_once_whatever_the_deliveries(
    worker, sla_policies, open_case, payments, mailoutbox
):
    payments.lead = UserFactory.create(username="lead", email="lead@payments.example.test")
    payments.save()
    case = open_case(severity=Severity.CRITICAL)
    Case.objects.filter(pk=case.pk).update(due_at=timezone.now() - timedelta(minutes=1))

    assert deliver_twice(escalate_overdue_cases, worker) == [1, 0]

    assert Case.objects.get(pk=case.pk).escalated_at is not None
    assert Comment.objects.filter(case=case).count() == 1
    assert [email.to for email in mailoutbox] == [["lead@payments.example.test"]]


def test_expired_risk_acceptances_reopen_in_a_worker_once(
    worker, sla_policies, case_in_state, analyst, approver
):
    case = case_in_state(CaseState.CONFIRMED)
    approval = services.approval_request(
        actor=analyst,
        case_id=case.pk,
        kind="risk_acceptance",
        reason="compensating control",
        risk_expires_on=timezone.localdate() + timedelta(days=30),
    )
    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)
    Case.objects.filter(pk=case.pk).update(risk_accepted_until=timezone.localdate() - timedelta(days=1))

    assert deliver_twice(reopen_expired_risk_acceptances, worker) == [1, 0]

    assert Case.objects.get(pk=case.pk).state == CaseState.IDENTIFIED
    assert case.transitions.filter(name="reopen").count() == 1


def test_snapshots_are_taken_in_a_worker_once_per_week(worker, role_groups):
    catalog_load(path=CATALOG_DIR / "owasp-nhi-top10-2025.json")

    assert deliver_twice(snapshot_alignment_reports, worker) == [1, 0]

    snapshot = ReportSnapshot.objects.get()
    assert snapshot.until is not None
    assert snapshot.until < timezone.localdate()


# --- `make run` without Redis: a worker with an embedded beat on the filesystem transport -------------------


def test_the_single_machine_worker_runs_the_periodic_sla_check_without_redis(
    transactional_db, sla_policies, open_case, payments, tmp_path
):
    """What `make run` starts next to the web server, run for real (beat every second instead of 15 min)."""
    payments.lead = UserFactory.create(username="lead", email="lead@payments.example.test")
    payments.save()
    mail_dir, var_dir = tmp_path / "mail", tmp_path / "var"
    for folder in (mail_dir, var_dir / "celery" / "queue", var_dir / "celery" / "control"):
        folder.mkdir(parents=True)

    with workers.database_for_workers(tmp_path) as database_url:
        case = open_case(severity=Severity.CRITICAL)
        Case.objects.filter(pk=case.pk).update(due_at=timezone.now() - timedelta(minutes=1))
        env = workers.worker_env(
            database_url=database_url,
            broker_url="filesystem://",
            mail_dir=mail_dir,
            var_dir=var_dir,
            TEST_BEAT_EVERY_SECOND="1",
        )
        worker = workers.start_worker(
            name="single",
            env=env,
            log=tmp_path / "worker.log",
            args=("--beat", "--pool=solo", "--schedule", str(tmp_path / "beat-schedule")),
        )
        try:
            # The first sweep escalates; the next ones (one a second) find nothing left to do.
            worker.wait_for_log("] succeeded in", count=3, timeout=60)
        finally:
            worker.stop()

        assert Case.objects.get(pk=case.pk).escalated_at is not None
        assert Comment.objects.filter(case_id=case.pk).count() == 1
    emails = workers.emails_in(mail_dir)
    assert len(emails) == 1
    assert "To: lead@payments.example.test" in emails[0]
