"""The alignment report's traceability counts only what the audit chain proves (issue 7, point 4).

A case is traceable when every transition after opening gave a reason and the chain proves every one of its
transitions: each has a chain entry, and the chain is intact up to the latest. The chain is tampered with
here as an attacker would, in SQL behind the portal's back (on PostgreSQL, with the append-only trigger
switched off for the session).
"""

import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEntry, VerificationTrigger
from audit.selectors import audit_proven_through
from audit.services import audit_trail_verify
from cases import services
from cases.alignment import alignment_report
from cases.models import (
    Case,
    CaseControlMapping,
    CaseKind,
    CaseState,
    CaseTransition,
    MappingSource,
    Severity,
)
from cases.reports.outputs import report_output
from frameworks.models import Control

CSF = "nist-csf-2.0"
CONTROL = "RS.AN-06"


@pytest.fixture
def catalogs(db: None) -> None:
    call_command("load_catalogs", stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.fixture
def mapped_case(catalogs: None, open_case: Any) -> Any:
    """Open a case through the services and map it by hand (no mapping rules are loaded) to RS.AN-06, which
    all these cases share, and to a control of its own, whose figures are that case's alone."""
    shared = Control.objects.get(framework__key=CSF, ref_id=CONTROL)
    own = iter(Control.objects.filter(framework__key=CSF, kind="subcategory").exclude(pk=shared.pk))

    def make() -> Case:
        case = open_case()
        for control in (shared, next(own)):
            CaseControlMapping.objects.create(
                case=case,
                control=control,
                source=MappingSource.MANUAL,
                rationale="test",
                changed_at=timezone.now(),
            )
        return case

    return make


def _confirm(case: Case, actor: Any) -> Case:
    return services.case_confirm(case_id=case.pk, actor=actor, reason="the key is live")


def _counted() -> tuple[int, int]:
    """(mapped cases, traceable cases) of RS.AN-06 in the report."""
    controls = {row["ref_id"]: row for row in alignment_report(framework_key=CSF).as_dict()["controls"]}
    return controls[CONTROL]["mapped_cases"], controls[CONTROL]["traceable"]


def _traceable(*cases: Case) -> set[int]:
    """Which of these cases the report counts as traceable, each read off the control that is its own."""
    rows = {row["ref_id"]: row for row in alignment_report(framework_key=CSF).as_dict()["controls"]}
    own = dict(
        CaseControlMapping.objects.filter(case__in=cases)
        .exclude(control__ref_id=CONTROL)
        .values_list("case_id", "control__ref_id")
    )
    assert len(own) == len(cases)
    return {case.pk for case in cases if rows[own[case.pk]]["traceable"] == 1}


@contextmanager
def _behind_the_portals_back() -> Iterator[CursorWrapper]:
    """A raw cursor; on PostgreSQL with triggers off, as a database superuser could."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")


def _set_body(seq: int, body: str) -> None:
    with _behind_the_portals_back() as cursor:
        cursor.execute("UPDATE audit_auditentry SET body = %s WHERE seq = %s", [body, seq])
        assert cursor.rowcount == 1


def _tamper(seq: int) -> str:
    """Change the actor named in a sealed entry; return the original body."""
    original = AuditEntry.objects.get(seq=seq).body
    forged = original.replace('"username":"analyst"', '"username":"approver"')
    assert forged != original
    _set_body(seq, forged)
    return original


def _opening_seq(case: Case) -> int:
    seq = CaseTransition.objects.get(case=case, name="open").audit_seq
    assert seq is not None
    return seq


def test_a_transition_records_its_chain_entry_as_the_case_latest(mapped_case, analyst):
    case = _confirm(mapped_case(), analyst)

    row = Case.objects.get(pk=case.pk)
    latest = CaseTransition.objects.filter(case=case).latest("at", "id")
    entry = AuditEntry.objects.get(seq=row.chain_seq)
    assert row.chain_seq == latest.audit_seq == case.chain_seq
    assert (entry.event, entry.case_id) == ("case.confirm", case.pk)


def test_a_case_whose_every_transition_the_chain_proves_counts(mapped_case, analyst):
    _confirm(mapped_case(), analyst)
    _confirm(mapped_case(), analyst)

    assert _counted() == (2, 2)


def test_a_proven_case_without_a_reason_is_still_not_traceable(mapped_case, analyst):
    careless = services.case_confirm(case_id=mapped_case().pk, actor=analyst, reason="")
    _confirm(mapped_case(), analyst)

    assert Case.objects.get(pk=careless.pk).chain_seq is not None
    assert _counted() == (2, 1)


def test_a_tampered_entry_drops_its_case_and_every_case_proven_only_after_it(mapped_case, analyst):
    before = _confirm(mapped_case(), analyst)  # entirely before the tampered entry
    straddling = mapped_case()  # opened before it, confirmed after it
    tampered = mapped_case()
    straddling = _confirm(straddling, analyst)
    after = _confirm(mapped_case(), analyst)
    everyone = (before, straddling, tampered, after)
    assert _traceable(*everyone) == {case.pk for case in everyone}

    _tamper(_opening_seq(tampered))

    assert audit_proven_through() == _opening_seq(tampered) - 1
    assert _traceable(*everyone) == {before.pk}
    assert _counted() == (4, 1)


def test_a_transition_row_written_behind_the_services_back_drops_its_case(mapped_case, analyst):
    forged = _confirm(mapped_case(), analyst)
    honest = _confirm(mapped_case(), analyst)
    assert _counted() == (2, 2)

    with _behind_the_portals_back() as cursor:
        cursor.execute(
            "INSERT INTO cases_casetransition"
            " (case_id, name, source_state, target_state, actor_id, reason, at)"
            " VALUES (%s, 'assign', 'confirmed', 'assigned', %s, 'looks fine', %s)",
            [forged.pk, analyst.pk, connection.ops.adapt_datetimefield_value(timezone.now())],
        )

    # Its own facts still pass (a reason, a proven latest entry): only the unproven row drops it.
    row = Case.objects.get(pk=forged.pk)
    assert row.traceable
    assert row.chain_seq is not None
    assert _traceable(forged, honest) == {honest.pk}


def test_a_recorded_verification_that_found_a_problem_caps_what_counts(mapped_case, analyst):
    early = _confirm(mapped_case(), analyst)
    late = _confirm(mapped_case(), analyst)
    seq = _opening_seq(late)
    original = _tamper(seq)
    assert not audit_trail_verify(trigger=VerificationTrigger.COMMAND).ok

    _set_body(seq, original)  # repaired: the chain is whole again, but the last check said otherwise

    assert audit_proven_through() == seq - 1
    assert _traceable(early, late) == {early.pk}

    assert audit_trail_verify(trigger=VerificationTrigger.COMMAND).ok
    assert _traceable(early, late) == {early.pk, late.pk}


def test_a_case_from_before_the_chain_does_not_count(mapped_case, analyst):
    chained = _confirm(mapped_case(), analyst)
    legacy = _confirm(mapped_case(), analyst)
    # As the migration leaves a case whose transitions were all logged before the chain existed.
    CaseTransition.objects.filter(case=legacy).update(audit_seq=None)
    Case.objects.filter(pk=legacy.pk).update(chain_seq=None)

    assert _traceable(chained, legacy) == {chained.pk}


def test_the_migration_fills_chain_seq_from_the_transitions_and_leaves_older_cases_empty(
    mapped_case, analyst
):
    chained = _confirm(mapped_case(), analyst)
    legacy = _confirm(mapped_case(), analyst)
    latest = Case.objects.get(pk=chained.pk).chain_seq
    CaseTransition.objects.filter(case=legacy).update(audit_seq=None)
    Case.objects.update(chain_seq=None)

    migration = importlib.import_module("cases.migrations.0010_case_chain_seq")
    migration.backfill(apps, SimpleNamespace(connection=connection))

    assert Case.objects.get(pk=chained.pk).chain_seq == latest
    assert Case.objects.get(pk=legacy.pk).chain_seq is None


def _proven_bulk_cases(n: int, *, seq: int, user: Any) -> None:
    """n cases whose facts and transitions point at a real, proven entry, so that every one is looked up."""
    control = Control.objects.get(framework__key=CSF, ref_id=CONTROL)
    start = Case.objects.count()
    cases = Case.objects.bulk_create(
        Case(
            title=f"bulk {start + i}",
            kind=CaseKind.ALERT_TRIAGE,
            severity=Severity.LOW,
            state=CaseState.CONFIRMED,
            chain_seq=seq,
            due_at=timezone.now() + timedelta(days=1),
        )
        for i in range(n)
    )
    now = timezone.now()
    CaseTransition.objects.bulk_create(
        CaseTransition(
            case=case, name="open", target_state="identified", actor=user, reason="", at=now, audit_seq=seq
        )
        for case in cases
    )
    CaseControlMapping.objects.bulk_create(
        CaseControlMapping(case=case, control=control, source="rule", rationale="bulk", changed_at=now)
        for case in cases
    )


def _report_queries() -> tuple[int, int, int]:
    with CaptureQueriesContext(connection) as captured:
        report = alignment_report(framework_key=CSF)
    (row,) = (row for row in report.controls if row.ref_id == CONTROL)
    return len(captured.captured_queries), row.figures.mapped_cases, row.figures.traceable


def test_the_number_of_queries_does_not_grow_with_the_proven_cases(mapped_case, analyst):
    seq = Case.objects.get(pk=_confirm(mapped_case(), analyst).pk).chain_seq
    assert seq is not None

    _proven_bulk_cases(9, seq=seq, user=analyst)
    few = _report_queries()
    _proven_bulk_cases(990, seq=seq, user=analyst)
    many = _report_queries()

    assert (few[1:], many[1:]) == ((10, 10), (1000, 1000))
    assert few[0] == many[0]


def test_the_report_states_the_definition_and_how_far_the_chain_was_proven(mapped_case, analyst):
    case = _confirm(mapped_case(), analyst)
    tampered = Case.objects.get(pk=case.pk).chain_seq
    assert tampered is not None
    _tamper(tampered)

    output = report_output(framework_key=CSF, fmt="html", since=None, until=None)
    data = json.loads(report_output(framework_key=CSF, fmt="json", since=None, until=None).content)

    assert data["audit_chain"] == {"proven_through": tampered - 1}
    page = output.content.decode("utf-8")
    assert "every transition gave a reason and is proven by the audit chain" in page
    assert f"intact up to entry #{tampered - 1}" in page
    assert "cases from before the audit chain do not count" in page
