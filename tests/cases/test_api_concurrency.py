"""Two people moving one case over HTTP at the same moment: one 2xx, one 409, one transition in history.

The race is made real, not hoped for: a third connection holds the case's row lock until both requests are
waiting on it (seen in pg_locks), so both have passed every check done before the lock and both reach the
service's `select_for_update`. Then the lock is released and the two requests race for it.
"""

import threading
import time

import pytest
from django.db import connection, transaction

from cases import services
from cases.models import Case, CaseState, CaseTransition

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")

WAIT = 15


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0]


def _race(case, clients_and_requests):
    """Send each (client, url, body) from its own thread and DB connection while the case row is locked."""
    start = threading.Barrier(len(clients_and_requests) + 1, timeout=WAIT)
    answers = [None] * len(clients_and_requests)

    def send(index, client, url, body):
        try:
            start.wait()
            answers[index] = client.post(url, body, format="json")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=(index, *request))
        for index, request in enumerate(clients_and_requests)
    ]
    seen = {}

    def hold_the_row():
        try:
            with transaction.atomic():
                Case.objects.select_for_update().get(pk=case.pk)
                start.wait()
                deadline = time.monotonic() + WAIT
                while _waiting_on_locks() < len(threads) and time.monotonic() < deadline:
                    time.sleep(0.02)
                seen["waiting"] = _waiting_on_locks()
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    for thread in threads:
        thread.start()
    for thread in (holder, *threads):
        thread.join(WAIT * 2)
        assert not thread.is_alive()
    # Both requests were queued on the row lock at once: the race really happened.
    assert seen["waiting"] == len(threads), seen
    return answers


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_confirms_give_one_success_and_one_409(api, analyst, open_case):
    case = open_case()
    url = f"/api/v1/cases/{case.pk}/transitions/confirm/"

    answers = _race(
        case, [(api(analyst), url, {"reason": "first"}), (api(analyst), url, {"reason": "second"})]
    )

    assert sorted(answer.status_code for answer in answers) == [200, 409], [a.content for a in answers]
    loser = next(answer for answer in answers if answer.status_code == 409)
    assert "reload" in loser.json()["detail"]
    assert CaseTransition.objects.filter(case=case, name="confirm").count() == 1
    assert Case.history.filter(id=case.pk, history_change_reason__startswith="confirm").count() == 1
    assert Case.objects.get(pk=case.pk).state == CaseState.CONFIRMED


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_dismiss_and_a_start_action_sent_together_leave_exactly_one_transition(api, analyst, case_in_state):
    """Each of these two excludes the other (a dismissed case takes no action; one in progress cannot be
    dismissed), so whichever order the lock grants them in, the second one must be refused."""
    case = case_in_state(CaseState.ASSIGNED)
    services.action_item_add(
        actor=analyst, case_id=case.pk, kind="rotation", title="Rotate", owning_team=case.owning_team
    )
    base = f"/api/v1/cases/{case.pk}/transitions"
    versions_before = Case.history.filter(id=case.pk).count()

    answers = _race(
        case,
        [
            (api(analyst), f"{base}/start_action/", {"reason": "rotating"}),
            (api(analyst), f"{base}/dismiss/", {"dismissal_reason": "benign", "reason": "test key"}),
        ],
    )

    assert sorted(answer.status_code for answer in answers) == [200, 409], [a.content for a in answers]
    moved = list(
        CaseTransition.objects.filter(case=case)
        .exclude(name__in=("open", "confirm", "assign"))
        .values_list("name", flat=True)
    )
    assert len(moved) == 1
    winner = {"start_action": CaseState.IN_PROGRESS, "dismiss": CaseState.DISMISSED}[moved[0]]
    assert Case.objects.get(pk=case.pk).state == winner
    assert Case.history.filter(id=case.pk).count() == versions_before + 1
