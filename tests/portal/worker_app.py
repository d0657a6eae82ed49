"""The portal's Celery app as the tests' worker processes run it (`celery -A tests.portal.worker_app`).

Two hooks, each off unless its variable is set:
- TEST_BEAT_EVERY_SECOND: beat sends the SLA sweep every second instead of every 15 minutes;
- TEST_PAUSE_MARKER: the first escalation to save a case writes its process id to that file and then
  sleeps, inside the escalation's transaction, so a test can kill the worker mid-task. Later escalations
  (the redelivery) find the file and do not pause.
"""

import os
import time
from pathlib import Path
from typing import Any

from django.db.models.signals import post_save

from portal.celery import app

__all__ = ("app",)

if os.environ.get("TEST_BEAT_EVERY_SECOND") == "1":
    app.conf.beat_schedule = {
        "escalate-overdue-cases": {"task": "cases.tasks.escalate_overdue_cases", "schedule": 1.0},
    }


def pause_once_mid_escalation(sender: Any, instance: Any, **kwargs: Any) -> None:
    marker = os.environ.get("TEST_PAUSE_MARKER")
    if not marker or instance.escalated_at is None or Path(marker).exists():
        return
    Path(marker).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(120)


# By label: the models are not loaded yet when celery imports this module (Django connects it once they are).
post_save.connect(pause_once_mid_escalation, sender="cases.Case", weak=False)
