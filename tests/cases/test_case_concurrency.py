"""Two people moving one case at once: exactly one wins, the other is told, nothing is written twice."""

import threading
import time

import pytest
from django.db import connection, transaction
from django_fsm import ConcurrentTransition

from cases import services
from cases.errors import TransitionConflict
from cases.models import Case, CaseState, CaseTransition
from tests.cases.support import record_of
from tests.threads import in_own_connection

# --- Any database: the state check in the UPDATE ------------------------------------------------------------


def test_a_stale_case_cannot_save_over_a_state_moved_in_the_database(open_case, analyst):
    case = open_case()
    stale = Case.objects.get(pk=case.pk)
    services.case_confirm(case_id=case.pk, actor=analyst)

    stale.dismiss(dismissal_reason="benign")
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        stale.save()

    assert Case.objects.get(pk=case.pk).state == CaseState.CONFIRMED


def test_a_fresh_case_saves_after_reloading(open_case, analyst):
    case = open_case()
    stale = Case.objects.get(pk=case.pk)
    services.case_confirm(case_id=case.pk, actor=analyst)

    stale.refresh_from_db()
    stale.dismiss(dismissal_reason="benign")
    stale.save()

    assert Case.objects.get(pk=case.pk).state == CaseState.DISMISSED


def test_a_service_that_loses_the_race_raises_a_conflict_and_writes_nothing(open_case, analyst, monkeypatch):
    """SQLite has no row lock: another writer can move the case between our read and our UPDATE.

    The other writer is injected right after the service has read the row, which is exactly that window.
    """
    case = open_case()
    read_the_row = services._lock_case

    def read_then_someone_else_dismisses(*, case_id, actor):
        loaded = read_the_row(case_id=case_id, actor=actor)
        Case.objects.filter(pk=case_id).update(state=CaseState.DISMISSED)
        return loaded

    monkeypatch.setattr(services, "_lock_case", read_then_someone_else_dismisses)
    before = record_of(case)

    with pytest.raises(TransitionConflict):
        services.case_confirm(case_id=case.pk, actor=analyst, reason="mine")

    # The injected write ran inside the service's transaction, so it rolled back with it: all is as before.
    assert record_of(case) == before


# --- PostgreSQL: the row lock makes the second caller wait, then see the new state --------------------------

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_confirms_let_exactly_one_through(open_case, analyst):
    case = open_case()
    a_holds_the_lock = threading.Barrier(2, timeout=10)

    def first():
        with transaction.atomic():
            Case.objects.select_for_update().get(pk=case.pk)
            a_holds_the_lock.wait()
            time.sleep(0.3)  # B is now waiting on the row lock
            return services.case_confirm(case_id=case.pk, actor=analyst, reason="first")

    def second():
        a_holds_the_lock.wait()
        return services.case_confirm(case_id=case.pk, actor=analyst, reason="second")

    (thread_a, a), (thread_b, b) = in_own_connection(first), in_own_connection(second)
    thread_a.join(15)
    thread_b.join(15)

    assert not thread_a.is_alive()
    assert not thread_b.is_alive()
    assert "error" not in a, a
    assert a["result"].state == CaseState.CONFIRMED
    assert isinstance(b.get("error"), TransitionConflict), b
    assert list(
        CaseTransition.objects.filter(case=case, name="confirm").values_list("reason", flat=True)
    ) == ["first"]
    assert Case.history.filter(id=case.pk, history_change_reason__startswith="confirm").count() == 1
    assert Case.objects.get(pk=case.pk).state == CaseState.CONFIRMED


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_dismiss_racing_a_confirm_leaves_one_consistent_outcome(open_case, analyst):
    case = open_case()
    a_holds_the_lock = threading.Barrier(2, timeout=10)

    def first():
        with transaction.atomic():
            Case.objects.select_for_update().get(pk=case.pk)
            a_holds_the_lock.wait()
            time.sleep(0.3)
            return services.case_dismiss(
                case_id=case.pk, actor=analyst, dismissal_reason="false_positive", reason="noise"
            )

    def second():
        a_holds_the_lock.wait()
        return services.case_confirm(case_id=case.pk, actor=analyst)

    (thread_a, a), (thread_b, b) = in_own_connection(first), in_own_connection(second)
    thread_a.join(15)
    thread_b.join(15)

    assert "error" not in a, a
    assert isinstance(b.get("error"), TransitionConflict), b
    assert Case.objects.get(pk=case.pk).state == CaseState.DISMISSED
    assert list(CaseTransition.objects.filter(case=case).values_list("name", flat=True)) == [
        "open",
        "dismiss",
    ]
