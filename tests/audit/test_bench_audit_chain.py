"""The audit chain benchmark's own functions (bench/audit_chain.py) on a tiny scale, untimed: the chain it
builds is the real format and verifies, and its append measurement really appends in one mode only."""

import importlib.util
import json
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from audit import services as audit_services
from audit.chain import seal_body
from audit.models import AuditEntry, AuditHead, AuditVerification
from audit.services import audit_chain_walk
from cases import services
from cases.models import CaseKind, CaseTransition
from tests.audit.tamper import ENTRIES, sql, tampering

BENCH = Path(__file__).resolve().parents[2] / "bench" / "audit_chain.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_audit_chain", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_it_builds_a_chain_that_the_real_verifier_finds_intact(bench: ModuleType, db: None) -> None:
    built = bench.chain_build(2_000)

    result = audit_chain_walk()
    assert result.problem is None
    assert result.entries_checked == 2_000
    assert (result.last_seq, result.last_hash) == (2_000, built["last_hash"])
    head = AuditHead.objects.get(pk=1)
    assert (head.seq, head.last_hash) == (2_000, built["last_hash"])
    # Bodies of the size the portal writes for a transition, so the walk hashes what it would in production.
    assert 300 <= built["mean_body_bytes"] <= 500


def test_it_continues_the_chain_after_the_entries_already_there(
    bench: ModuleType, analyst: Any, open_case: Any
) -> None:
    open_case()  # the real service appends the "open" entry first
    before = AuditHead.objects.get(pk=1).seq

    built = bench.chain_build(500)

    assert built["first_seq"] == before + 1
    result = audit_chain_walk()
    assert result.problem is None
    assert result.entries_checked == before + 500


@pytest.mark.parametrize("page", [300, 500])
def test_the_walk_reads_a_chain_longer_than_a_page_whole_and_once(
    bench: ModuleType, db: None, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    # 2,000 entries: six pages of 300 and a short one; or four full pages of 500 and an empty query.
    bench.chain_build(2_000)
    monkeypatch.setattr(audit_services, "WALK_BATCH", page)

    result = audit_chain_walk()

    assert result.problem is None
    assert (result.entries_checked, result.last_seq) == (2_000, 2_000)


def test_an_entry_deleted_from_a_later_page_is_named(
    bench: ModuleType, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench.chain_build(2_000)
    monkeypatch.setattr(audit_services, "WALK_BATCH", 300)
    with tampering():
        sql(f"DELETE FROM {ENTRIES} WHERE seq = %s", [1_500])

    result = audit_chain_walk()

    assert result.problem is not None
    assert (result.problem.kind, result.problem.seq) == ("missing", 1_500)
    assert result.last_seq == 1_499


def test_its_entries_are_sealed_exactly_as_a_real_transition_is(
    bench: ModuleType, analyst: Any, open_case: Any
) -> None:
    case = services.case_confirm(case_id=open_case().pk, actor=analyst, reason="confirmed with the owner")
    transition = CaseTransition.objects.get(case=case, name="confirm")
    assert transition.audit_seq is not None
    entry = AuditEntry.objects.get(seq=transition.audit_seq)
    recorded = json.loads(entry.body)["entry"]

    rebuilt = bench.transition_entry_json(
        at=datetime.fromisoformat(recorded["at"]),
        actor_id=analyst.pk,
        username=analyst.username,
        case_id=case.pk,
        source="identified",
        target="confirmed",
        transition_id=transition.pk,
        reason="confirmed with the owner",
    )

    sealed = seal_body(
        seq=entry.seq, prev_hash=entry.prev_hash, case_id=case.pk, event="case.confirm", entry_json=rebuilt
    )
    assert sealed == entry.body


def test_verify_once_times_the_walk_and_the_recorded_verification(bench: ModuleType, db: None) -> None:
    bench.chain_build(2_000)

    walked = bench.verify_once("walk")
    verified = bench.verify_once("verify")

    assert (walked["ok"], walked["entries_checked"]) == (True, 2_000)
    assert (verified["ok"], verified["entries_checked"]) == (True, 2_000)
    assert walked["seconds"] > 0
    assert AuditVerification.objects.get().last_seq == 2_000


def test_the_append_measurement_audits_only_the_transitions_timed_with_the_append(
    bench: ModuleType, analyst: Any
) -> None:
    measured = bench.measure_appends(transitions=12, appends=5, cases=3, actor=analyst)

    assert measured["with_audit"]["n"] == measured["without_audit"]["n"] == 12
    assert measured["bare_append"]["n"] == 5
    moved = CaseTransition.objects.exclude(name="open")
    # Warm-up: 9 transitions in each mode (one block: three rounds over three cases), then 12 timed in each.
    assert moved.count() == 2 * (9 + 12)
    assert moved.filter(audit_seq__isnull=False).count() == 9 + 12
    assert AuditEntry.objects.filter(event__in=("case.confirm", "case.dismiss", "case.reopen")).count() == 21
    assert AuditEntry.objects.filter(event="bench.append").count() == 5
    assert audit_chain_walk().problem is None


def test_skipping_the_append_is_undone_afterwards_even_on_error(bench: ModuleType, analyst: Any) -> None:
    real = services.audit_entry_append
    seen_inside = []

    def fail_while_skipped() -> None:
        with bench.audit_appends_skipped():
            seen_inside.append(services.audit_entry_append)
            raise RuntimeError("the benchmark failed mid-way")

    with pytest.raises(RuntimeError):
        fail_while_skipped()

    assert seen_inside[0] is not real
    assert services.audit_entry_append is real
    case = services.case_open(actor=analyst, title="after the benchmark", kind=CaseKind.ALERT_TRIAGE)
    assert AuditEntry.objects.filter(case_id=case.pk, event="case.open").exists()
