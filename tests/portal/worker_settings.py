"""Settings of the worker processes started by the tests (`tests/portal/workers.py`): the portal's own, plus
a file email backend (one file per email sent, in TEST_WORKER_MAIL_DIR) and a queue of the test's own."""

import os

from portal.settings import *  # noqa: F403
from portal.settings import CELERY_BROKER_TRANSPORT_OPTIONS, CELERY_BROKER_URL

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ["TEST_WORKER_MAIL_DIR"]
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TEST_WORKER_QUEUE", "celery")
if CELERY_BROKER_URL.startswith("redis://"):
    # Look for abandoned messages every second, not every 100 s (the transport's default sweep period), so
    # that a redelivery after the visibility timeout shows within the test's patience.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
