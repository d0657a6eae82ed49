"""Work in another thread with its own database connection, for the concurrency tests (PostgreSQL)."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def in_own_connection(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start `work` in a thread with its own DB connection; keep its result or error; close the connection."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except Exception as error:
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome
