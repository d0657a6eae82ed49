"""Real worker processes against Redis (127.0.0.1:6379): the SLA escalation end to end, and workers killed.

Skipped when Redis is unreachable; failed instead when REQUIRE_REDIS=1 (CI), so the tests cannot silently
stop running. Each test uses its own queue on a Redis database of its own (REDIS_TEST_DB, default 15), so
it neither sees nor leaves messages of another run. The workers see the test's committed data: the test is
transactional, and on SQLite its database is copied to a file for them (`tests/portal/workers.py`).

What a kill must not do: lose the escalation (a task acknowledged before it ran, `acks_late`) or do it twice
(a redelivered task running again what the killed one had committed). The kill happens inside the
escalation's transaction (a test hook pauses it there), so nothing of the first attempt is committed.
"""

import os
import signal
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.utils import timezone

from cases.models import Case, Comment, Severity, SlaPolicy
from tests.factories import UserFactory
from tests.portal import workers

pytestmark = pytest.mark.redis

REDIS = "redis://127.0.0.1:6379"
TASK = "cases.tasks.escalate_overdue_cases"
SUCCEEDED = f"Task {TASK}["


@pytest.fixture(scope="module", autouse=True)
def redis_url() -> str:
    """Checked first (autouse), so a missing Redis skips before any database is set up."""
    url = f"{REDIS}/{int(os.environ.get('REDIS_TEST_DB', '15'))}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        reason = f"Redis is unreachable at {url} ({type(error).__name__})"
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"REQUIRE_REDIS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def queue(redis_url):
    name = f"portal-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")


@pytest.fixture
def overdue_case(transactional_db, open_case, payments):
    """A committed critical case one minute past due, whose team lead has an address."""
    for severity, hours in ((4, 24), (3, 72), (2, 168), (1, 720)):  # flushed by transactional tests
        SlaPolicy.objects.get_or_create(severity=severity, defaults={"hours_to_resolve": hours})
    payments.lead = UserFactory.create(username="lead", email="lead@payments.example.test")
    payments.save()
    case = open_case(severity=Severity.CRITICAL)
    Case.objects.filter(pk=case.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    return case


@pytest.fixture
def setting(tmp_path, redis_url, queue):
    """Everything a worker of this test needs: its database, environment, mail folder; stops them all."""
    mail_dir, var_dir = tmp_path / "mail", tmp_path / "var"
    mail_dir.mkdir()
    var_dir.mkdir()
    started: list[workers.Worker] = []

    class Setting:
        mail = mail_dir

        def __init__(self, database_url: str) -> None:
            self.database_url = database_url

        def start(self, name: str, **env: str) -> workers.Worker:
            worker = workers.start_worker(
                name=name,
                env=workers.worker_env(
                    database_url=self.database_url,
                    broker_url=redis_url,
                    mail_dir=mail_dir,
                    var_dir=var_dir,
                    TEST_WORKER_QUEUE=queue,
                    **env,
                ),
                log=tmp_path / f"{name}.log",
                args=("-Q", queue, "--pool=prefork", "--concurrency=1"),
            )
            started.append(worker)
            return worker

    with workers.database_for_workers(tmp_path) as database_url:
        try:
            yield Setting(database_url)
        finally:
            for worker in started:
                worker.stop()


def send(redis_url: str, queue: str) -> None:
    """Publish the sweep as beat would, from a client of our own (this process's app runs tasks eagerly)."""
    client = Celery("tests-sender", broker=redis_url, set_as_current=False)
    try:
        client.send_task(TASK, queue=queue)
    finally:
        client.close()


def escalation_record(case: Case, mail: Path) -> dict[str, int]:
    row = Case.objects.get(pk=case.pk)
    return {
        "escalated": int(row.escalated_at is not None),
        "history": Case.history.filter(id=case.pk, history_change_reason__startswith="escalated").count(),
        "comments": Comment.objects.filter(case_id=case.pk).count(),
        "emails": len(workers.emails_in(mail)),
    }


ONCE = {"escalated": 1, "history": 1, "comments": 1, "emails": 1}
NOT_YET = {"escalated": 0, "history": 0, "comments": 0, "emails": 0}


def test_a_worker_escalates_an_overdue_case_through_redis_once_however_often_delivered(
    overdue_case, setting, redis_url, queue
):
    worker = setting.start("only")

    send(redis_url, queue)
    worker.wait_for_log("] succeeded in", count=1)
    send(redis_url, queue)
    worker.wait_for_log("] succeeded in", count=2)

    assert escalation_record(overdue_case, setting.mail) == ONCE
    assert "To: lead@payments.example.test" in workers.emails_in(setting.mail)[0]
    assert f"{TASK}[" in worker.output()


def test_a_worker_killed_mid_task_loses_nothing_and_a_second_worker_escalates_once(
    overdue_case, setting, redis_url, queue, tmp_path
):
    """SIGKILL of the whole worker: its unacknowledged message goes to the next worker after the timeout."""
    marker = tmp_path / "paused"
    first = setting.start("first", TEST_PAUSE_MARKER=str(marker), CELERY_VISIBILITY_TIMEOUT="4")

    send(redis_url, queue)
    first.wait_until(marker.exists, what="the escalation to pause mid-transaction")
    first.kill()
    assert escalation_record(overdue_case, setting.mail) == NOT_YET  # the killed transaction left nothing

    second = setting.start("second", TEST_PAUSE_MARKER=str(marker), CELERY_VISIBILITY_TIMEOUT="4")
    second.wait_for_log("] succeeded in", count=1, timeout=90)

    assert escalation_record(overdue_case, setting.mail) == ONCE
    assert "succeeded" not in first.output()


def test_a_pool_process_killed_mid_task_is_requeued_and_escalates_once(
    overdue_case, setting, redis_url, queue, tmp_path
):
    """SIGKILL of the process running the task: the worker rejects the message back to the queue
    (task_reject_on_worker_lost, acks_late) and runs it again, long before any visibility timeout."""
    marker = tmp_path / "paused"
    worker = setting.start("pool", TEST_PAUSE_MARKER=str(marker))

    send(redis_url, queue)
    worker.wait_until(marker.exists, what="the escalation to pause mid-transaction")
    os.kill(int(marker.read_text(encoding="utf-8")), signal.SIGKILL)
    worker.wait_for_log("] succeeded in", count=1, timeout=60)

    assert escalation_record(overdue_case, setting.mail) == ONCE
    assert "WorkerLostError" in worker.output() or "signal 9" in worker.output()
