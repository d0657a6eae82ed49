"""Real Celery worker processes for the tests that need one (the single-machine mode, Redis).

A worker is a separate process: it sees only what the test has committed (use `transactional_db`) in a
database it can open. On PostgreSQL that is pytest-django's test database itself. On SQLite the test
database lives in the test process's memory, so `database_for_workers` copies it to a file and points the
test's own connection at that file for the duration of the test (the in-memory database is left untouched
and used again afterwards).

Workers run `tests.portal.worker_app` (the portal's app, plus test hooks) with `tests.portal.worker_settings`
(the portal's settings, plus a file email backend): each email they send is a file in `mail_dir`.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.db import connection

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Variables of this process that would change how a worker reads its settings; the rest (PATH, ...) is kept.
_CONTROLLED = re.compile(r"^(CELERY_|DATABASE_|DJANGO_|EMAIL_|PORTAL_|TEST_WORKER_|TEST_BEAT_|TEST_PAUSE_)")


@contextmanager
def database_for_workers(directory: Path) -> Iterator[str]:
    """A DATABASE_URL for worker processes that holds what the test commits (see the module's docstring)."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        user = quote(settings["USER"] or "", safe="")
        password = f":{quote(settings['PASSWORD'], safe='')}" if settings.get("PASSWORD") else ""
        host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or "5432"
        yield f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"
        return
    if connection.vendor != "sqlite":
        raise NotImplementedError(f"worker processes on {connection.vendor}")
    path = directory / "workers.sqlite3"
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.close()
    in_memory, name = connection.connection, settings["NAME"]
    # Detached, not closed: closing the last connection to an in-memory database would drop it.
    connection.connection = None
    settings["NAME"] = str(path)
    try:
        yield f"sqlite:///{path}"
    finally:
        connection.close()
        settings["NAME"] = name
        connection.connection = in_memory


def worker_env(
    *, database_url: str, broker_url: str, mail_dir: Path, var_dir: Path, **extra: str
) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not _CONTROLLED.match(name)}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.portal.worker_settings",
        PORTAL_ENV="development",
        PORTAL_VAR_DIR=str(var_dir),
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        CELERY_TASK_ALWAYS_EAGER="0",
        TEST_WORKER_MAIL_DIR=str(mail_dir),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_until(self, condition: Callable[[], bool], *, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the worker exited ({self.process.returncode}) before {what}:\n{self.output()}"
                )
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; worker log:\n{self.output()}")

    def wait_for_log(self, text: str, *, count: int = 1, timeout: float = 60) -> None:
        self.wait_until(
            lambda: self.output().count(text) >= count, what=f"{count}× {text!r}", timeout=timeout
        )

    def kill(self) -> None:
        """SIGKILL the worker and every process it started: nothing gets to clean up or acknowledge."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(*, name: str, env: dict[str, str], log: Path, args: tuple[str, ...] = ()) -> Worker:
    """Start `celery worker` in its own process group and wait until it consumes."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.portal.worker_app",
        "worker",
        "-n",
        f"{name}@%h",
        "--loglevel=INFO",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        *args,
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process=process, log=log)
    try:
        worker.wait_for_log(" ready.", timeout=60)
    except BaseException:
        worker.kill()
        raise
    return worker


def emails_in(mail_dir: Path) -> list[str]:
    """The emails the workers sent, one string each (the file backend writes one file per connection)."""
    messages: list[str] = []
    for path in sorted(mail_dir.glob("*.log")):
        messages += [part for part in path.read_text(encoding="utf-8").split("-" * 79) if "Subject:" in part]
    return messages
