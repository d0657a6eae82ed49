"""The Celery app and the periodic jobs' schedule (celery beat).

Where tasks run (see README, "Background jobs"):
- tests and the web process of `make run`: in-process (CELERY_TASK_ALWAYS_EAGER, the `memory://` broker);
- `make run` also starts one worker with an embedded beat on kombu's filesystem transport under var/, so
  the periodic jobs run on a single machine without Redis;
- production: a Redis broker (CELERY_BROKER_URL), `make worker` and exactly one `make beat`.

Every periodic job is a sweep that reads what is due now, so a beat that was down only delays the work and a
job delivered twice does nothing twice. Nothing is scheduled with a countdown or an ETA: with Redis, a
message not acknowledged within the visibility timeout is delivered again (see CELERY_VISIBILITY_TIMEOUT).
"""

import os
from typing import Any

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task names, not imports: beat only sends messages, and the tasks live in the apps.
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # The SLA check (cases past their due date are escalated to their team lead).
    "escalate-overdue-cases": {
        "task": "cases.tasks.escalate_overdue_cases",
        "schedule": crontab(minute="*/15"),
    },
    # Risk acceptances end at the end of their day: reopen the expired ones early in the next.
    "reopen-expired-risk-acceptances": {
        "task": "cases.tasks.reopen_expired_risk_acceptances",
        "schedule": crontab(minute=10),
    },
    # Weekly snapshots, checked daily: a run missed on Monday is made up the next day, never doubled.
    "snapshot-alignment-reports": {
        "task": "cases.tasks.snapshot_alignment_reports",
        "schedule": crontab(hour=1, minute=20),
    },
    # Background ingest jobs lost on the way (a message never delivered, a worker that died mid-import).
    "expire-ingest-jobs": {
        "task": "findings.jobs.expire_ingest_jobs",
        "schedule": crontab(minute=40),
    },
    # Owners' unanswered confirmations: remind them, then escalate to the team lead.
    "remind-owners": {
        "task": "findings.tasks.remind_owners",
        "schedule": crontab(hour=7, minute=0),
    },
    # Hand-offs whose message was lost are sent again; leads are told of deliveries given up.
    "handoff-sweep": {
        "task": "handoffs.tasks.handoff_sweep",
        "schedule": crontab(minute="*/5"),
    },
    # A full walk of the audit chain, so the admin and the alignment report rest on a recent check.
    "verify-audit-trail": {
        "task": "audit.tasks.verify_audit_trail",
        "schedule": crontab(hour=2, minute=30),
    },
}
app.conf.beat_schedule = BEAT_SCHEDULE
