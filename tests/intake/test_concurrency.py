"""Two outputs about one identity at once: on PostgreSQL the second waits for the first and joins its case."""

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from cases.models import Case
from intake.models import AssistantOutput, Outcome
from intake.rules import Facts
from intake.services import assistant_output_submit
from tests.threads import in_own_connection

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
PROMOTED = Facts(
    needs_multi_person_review=False,
    triggers_downstream_work=True,
    must_be_retained_as_evidence=False,
    depends_on_fresh_context=False,
)


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_outputs_about_one_identity_open_one_case(
    analyst: Any, payments_identity: Any
) -> None:
    first_submitted = threading.Barrier(2, timeout=10)

    def submit(summary: str) -> AssistantOutput:
        return assistant_output_submit(
            actor=analyst,
            summary=summary,
            recommendation="Rotate it.",
            assistant="copilot",
            facts=PROMOTED,
            nhi_ids=[payments_identity.pk],
        )

    def first() -> AssistantOutput:
        with transaction.atomic():
            output = submit("first")
            first_submitted.wait()
            time.sleep(0.3)  # the second is now waiting on the identity's row lock
            return output

    def second() -> AssistantOutput:
        first_submitted.wait()
        return submit("second")

    (thread_a, a), (thread_b, b) = in_own_connection(first), in_own_connection(second)
    thread_a.join(15)
    thread_b.join(15)

    assert "error" not in a, a
    assert "error" not in b, b
    assert (a["result"].outcome, b["result"].outcome) == (Outcome.CASE_OPENED, Outcome.CASE_JOINED)
    assert Case.objects.count() == 1
    assert a["result"].case_id == b["result"].case_id
