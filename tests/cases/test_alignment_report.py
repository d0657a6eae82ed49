"""The framework alignment report: every figure against values worked out by hand for a known set of cases.

The cases are walked through the real services. Only what the services cannot set is written directly: the
mappings (no mapping rules are loaded, so each case is under exactly the controls listed here), and the
timestamps (created_at, verified_at, due_at) that make the medians, the period and the overdue count exact.

    case  severity  state       controls               evidence  reasons  approval          hours to verified
    A     high      closed      RS.AN-03, RS.AN-06     yes       all      approved          2
    B     medium    closed      RS.AN-03, RS.AN-06     yes       missing  not needed        4
    C     low       verified    RS.AN-03, DE.AE-02     yes       all      -                 10
    D     medium    identified  RS.AN-03 (+ RS.AN-06   no        -        -                 - (due yesterday)
                                inactive)
    E     critical  closed      DE.AE-02               yes       all      approved, reopened,
                                                                          approved again    6
    F     high      closed      DE.AE-02               yes       all      none (closed as
                                                                          medium, re-rated) 8
    G     medium    identified  RS.AN-03, PR.AA-01     no        -        -                 - (opened in 2020)
"""

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases import services
from cases.alignment import alignment_report
from cases.models import (
    ActionStatus,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseControlMapping,
    CaseKind,
    CaseState,
    CaseTransition,
    Evidence,
    EvidenceKind,
    MappingSource,
    Severity,
)
from frameworks.models import Control, ControlKind

CSF = "nist-csf-2.0"
FIGURES = (
    "mapped_cases",
    "with_evidence",
    "traceable",
    "severe_closures",
    "severe_closures_approved",
    "overdue_open",
    "median_hours_to_verified",
    "evidence_coverage",
    "traceability",
    "four_eyes_coverage",
)


@pytest.fixture
def catalogs(db: None) -> None:
    call_command("load_catalogs", stdout=open("/dev/null", "w"))  # noqa: SIM115


def _control(ref_id: str) -> Control:
    return Control.objects.get(framework__key=CSF, ref_id=ref_id)


def _map(case: Case, *ref_ids: str, active: bool = True) -> None:
    for ref_id in ref_ids:
        CaseControlMapping.objects.create(
            case=case,
            control=_control(ref_id),
            source=MappingSource.MANUAL,
            rationale="test",
            is_active=active,
            changed_at=timezone.now(),
        )


@pytest.fixture
def walk(open_case: Any, analyst: Any, approver: Any, payments: Any) -> Any:
    """Walk a case through the services to `state`, giving a reason at each step unless told not to."""

    def forward(case: Case, state: str, *, reasons: bool, approve: bool) -> Case:
        reason = "checked" if reasons else ""
        case = services.case_confirm(case_id=case.pk, actor=analyst, reason=reason)
        case = services.case_assign(
            case_id=case.pk, actor=analyst, assignee=analyst, owning_team=payments, reason=reason or ""
        )
        item = services.action_item_add(
            actor=analyst, case_id=case.pk, kind="rotation", title="Rotate", owning_team=payments
        )
        case = services.case_start_action(case_id=case.pk, actor=analyst, reason="rotating")
        services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.DONE)
        services.evidence_capture(
            actor=analyst, case_id=case.pk, kind=EvidenceKind.NOTE, title="Log", note="rotated"
        )
        case = services.case_verify(case_id=case.pk, actor=analyst, reason="rotation confirmed")
        if state == CaseState.VERIFIED:
            return case
        if approve:
            approval = services.approval_request(
                actor=analyst, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="fixed"
            )
            services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)
        return services.case_close(case_id=case.pk, actor=analyst, reason="done")

    def make(
        state: str, *, severity: int = Severity.MEDIUM, reasons: bool = True, approve: bool = False
    ) -> Case:
        case = open_case(severity=severity, kind=CaseKind.SECRET_EXPOSURE)
        if state == CaseState.IDENTIFIED:
            return case
        return forward(case, state, reasons=reasons, approve=approve)

    make.forward = forward  # type: ignore[attr-defined]
    return make


def _timestamps(case: Case, *, opened: Any, hours_to_verified: float | None = None, due: Any = None) -> None:
    Case.objects.filter(pk=case.pk).update(
        created_at=opened,
        verified_at=opened + timedelta(hours=hours_to_verified) if hours_to_verified is not None else None,
        due_at=due,
    )


@pytest.fixture
def known_cases(catalogs: None, walk: Any, analyst: Any) -> dict[str, Case]:
    now = timezone.now()
    opened = now - timedelta(days=5)
    cases: dict[str, Case] = {}

    cases["A"] = walk(CaseState.CLOSED, severity=Severity.HIGH, approve=True)
    cases["B"] = walk(CaseState.CLOSED, reasons=False)
    cases["C"] = walk(CaseState.VERIFIED, severity=Severity.LOW)
    cases["D"] = walk(CaseState.IDENTIFIED)
    cases["E"] = walk(CaseState.CLOSED, severity=Severity.CRITICAL, approve=True)
    services.case_reopen(case_id=cases["E"].pk, actor=analyst, reason="key found again")
    cases["E"] = walk.forward(cases["E"], CaseState.CLOSED, reasons=True, approve=True)
    cases["F"] = walk(CaseState.CLOSED)
    services.case_update(
        actor=analyst, case_id=cases["F"].pk, changes={"severity": Severity.HIGH}, reason="re-rated"
    )
    cases["G"] = walk(CaseState.IDENTIFIED)

    _timestamps(cases["A"], opened=opened, hours_to_verified=2)
    _timestamps(cases["B"], opened=opened, hours_to_verified=4)
    _timestamps(cases["C"], opened=opened, hours_to_verified=10)
    _timestamps(cases["D"], opened=opened, due=now - timedelta(days=1))
    _timestamps(cases["E"], opened=opened, hours_to_verified=6)
    _timestamps(cases["F"], opened=opened, hours_to_verified=8)
    _timestamps(cases["G"], opened=opened.replace(year=2020), due=now - timedelta(days=1))

    _map(cases["A"], "RS.AN-03", "RS.AN-06")
    _map(cases["B"], "RS.AN-03", "RS.AN-06")
    _map(cases["C"], "RS.AN-03", "DE.AE-02")
    _map(cases["D"], "RS.AN-03")
    _map(cases["D"], "RS.AN-06", active=False)
    _map(cases["E"], "DE.AE-02")
    _map(cases["F"], "DE.AE-02")
    _map(cases["G"], "RS.AN-03", "PR.AA-01")
    return cases


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in FIGURES}


def _expected(
    mapped: int, evidence: int, traceable: int, severe: int, approved: int, overdue: int, median: float | None
) -> dict[str, Any]:
    return {
        "mapped_cases": mapped,
        "with_evidence": evidence,
        "traceable": traceable,
        "severe_closures": severe,
        "severe_closures_approved": approved,
        "overdue_open": overdue,
        "median_hours_to_verified": median,
        "evidence_coverage": round(evidence / mapped, 4) if mapped else None,
        "traceability": round(traceable / mapped, 4) if mapped else None,
        "four_eyes_coverage": round(approved / severe, 4) if severe else None,
    }


def _report(**period: Any) -> dict[str, Any]:
    today = timezone.localdate()
    period.setdefault("since", today - timedelta(days=30))
    period.setdefault("until", today)
    return alignment_report(framework_key=CSF, **period).as_dict()


def test_the_known_cases_are_what_the_table_says(known_cases):
    """Guard for the fixture itself: the services did what the hand computation assumes."""
    a, b, e, f = (known_cases[k] for k in "ABEF")
    assert CaseTransition.objects.filter(case=b, reason="").exclude(name="open").exists()
    assert not CaseTransition.objects.filter(case=a, reason="").exclude(name="open").exists()
    assert list(e.approvals.order_by("pk").values_list("status", flat=True)) == [
        ApprovalStatus.SUPERSEDED,
        ApprovalStatus.APPROVED,
    ]
    assert Case.objects.get(pk=f.pk).severity == Severity.HIGH
    assert not f.approvals.exists()
    assert not Evidence.objects.filter(case=known_cases["D"]).exists()


def test_every_control_figure_matches_the_hand_computation(known_cases):
    controls = {row["ref_id"]: row for row in _report()["controls"]}

    assert _figures(controls["RS.AN-03"]) == _expected(4, 3, 3, 1, 1, 1, 4.0)  # A, B, C, D: 2, 4, 10 h
    assert controls["RS.AN-03"]["by_state"] == {"closed": 2, "verified": 1, "identified": 1}
    assert _figures(controls["RS.AN-06"]) == _expected(2, 2, 1, 1, 1, 0, 3.0)  # A, B: mean of 2 and 4 h
    assert controls["RS.AN-06"]["by_state"] == {"closed": 2}
    assert _figures(controls["DE.AE-02"]) == _expected(3, 3, 3, 2, 1, 0, 8.0)  # C, E, F: 6, 8, 10 h
    assert controls["DE.AE-02"]["by_state"] == {"verified": 1, "closed": 2}
    assert (controls["RS.AN-03"]["category"], controls["RS.AN-03"]["function"]) == ("RS.AN", "RS")


def test_group_and_framework_figures_count_each_case_once(known_cases):
    report = _report()
    groups = {row["ref_id"]: row for row in report["groups"]}
    leaves = Control.objects.filter(framework__key=CSF, kind=ControlKind.SUBCATEGORY)

    # A and B are under two RS.AN controls: they still count once for RS.AN and RS.
    for ref_id in ("RS.AN", "RS"):
        assert _figures(groups[ref_id]) == _expected(4, 3, 3, 1, 1, 1, 4.0)
    for ref_id in ("DE.AE", "DE"):
        assert _figures(groups[ref_id]) == _expected(3, 3, 3, 2, 1, 0, 8.0)
    assert _figures(groups["PR.AA"]) == _expected(0, 0, 0, 0, 0, 0, None)  # G is outside the period
    assert groups["RS.AN"]["controls"] == leaves.filter(parent__ref_id="RS.AN").count()
    assert groups["RS.AN"]["covered_controls"] == 2
    assert groups["RS"]["controls"] == leaves.filter(parent__parent__ref_id="RS").count()
    assert groups["RS"]["covered_controls"] == 2
    assert groups["DE"]["covered_controls"] == 1

    summary = report["summary"]
    # A..F; verified after 2, 4, 10, 6, 8 h -> 6 h; severe closures A, E (approved) and F (not).
    assert _figures(summary) == _expected(6, 5, 5, 3, 2, 1, 6.0)
    assert (summary["controls"], summary["covered_controls"]) == (leaves.count(), 3)
    assert summary["control_coverage"] == round(3 / leaves.count(), 4)


def test_controls_without_cases_in_the_period_are_gaps(known_cases):
    report = _report()
    leaves = set(
        Control.objects.filter(framework__key=CSF, kind=ControlKind.SUBCATEGORY).values_list(
            "ref_id", flat=True
        )
    )

    assert set(report["gaps"]) == leaves - {"RS.AN-03", "RS.AN-06", "DE.AE-02"}
    assert "PR.AA-01" in report["gaps"]
    assert "RS.AN" not in report["gaps"]  # categories and functions are never gaps
    assert len(report["gaps"]) == len(report["gaps"]) == len(set(report["gaps"]))


def test_the_period_decides_which_cases_count(known_cases):
    everything = _report(since=None, until=None)
    controls = {row["ref_id"]: row for row in everything["controls"]}

    assert controls["RS.AN-03"]["mapped_cases"] == 5  # G now counts, and it is overdue
    assert controls["RS.AN-03"]["overdue_open"] == 2
    assert controls["PR.AA-01"]["mapped_cases"] == 1
    assert "PR.AA-01" not in everything["gaps"]
    assert everything["summary"]["mapped_cases"] == 7

    before = _report(since=None, until=timezone.localdate() - timedelta(days=10))
    assert before["summary"]["mapped_cases"] == 1
    assert before["period"]["since"] is None


def test_a_framework_without_categories_has_no_groups(known_cases):
    report = alignment_report(framework_key="owasp-nhi-top10-2025").as_dict()

    assert report["groups"] == []
    assert len(report["gaps"]) == 10
    assert report["summary"]["mapped_cases"] == 0
    assert report["summary"]["median_hours_to_verified"] is None


def _bulk_cases(n: int, user: Any) -> None:
    now = timezone.now()
    controls = list(Control.objects.filter(framework__key=CSF, kind=ControlKind.SUBCATEGORY)[:5])
    states = [CaseState.IDENTIFIED, CaseState.VERIFIED, CaseState.CLOSED]
    Case.objects.bulk_create(
        Case(
            title=f"bulk {i}",
            kind=CaseKind.ALERT_TRIAGE,
            severity=Severity.HIGH if i % 2 else Severity.LOW,
            state=states[i % 3],
            due_at=now - timedelta(days=1),
            verified_at=now if states[i % 3] != CaseState.IDENTIFIED else None,
        )
        for i in range(n)
    )
    ids = list(
        Case.objects.filter(title__startswith="bulk ", control_mappings__isnull=True).values_list(
            "id", flat=True
        )
    )
    CaseControlMapping.objects.bulk_create(
        CaseControlMapping(
            case_id=case_id, control=controls[(i + k) % 5], source="rule", rationale="bulk", changed_at=now
        )
        for i, case_id in enumerate(ids)
        for k in range(2)
    )
    Evidence.objects.bulk_create(
        Evidence(
            case_id=case_id,
            kind="note",
            title="t",
            note="n",
            sha256="0" * 64,
            captured_by=user,
            captured_at=now,
        )
        for case_id in ids[::2]
    )
    CaseTransition.objects.bulk_create(
        CaseTransition(
            case_id=case_id, name="confirm", target_state="confirmed", actor=user, reason="", at=now
        )
        for case_id in ids[::3]
    )


def _queries(n: int, user: Any) -> tuple[int, int]:
    """Bring the bulk cases up to n, then count the report's queries."""
    _bulk_cases(n - Case.objects.filter(title__startswith="bulk ").count(), user)
    with CaptureQueriesContext(connection) as captured:
        report = alignment_report(framework_key=CSF)
    return len(captured.captured_queries), report.summary.figures.mapped_cases


def test_the_number_of_queries_does_not_grow_with_the_cases(catalogs, analyst):
    few, mapped_few = _queries(10, analyst)
    many, mapped_many = _queries(1000, analyst)

    assert (mapped_few, mapped_many) == (10, 1000)
    assert few == many


def test_a_case_mapped_to_a_category_counts_for_the_category_and_its_function(catalogs, open_case):
    case = open_case()
    _map(case, "RS.MA")  # mapped by hand to the category itself, not to one of its subcategories

    report = alignment_report(framework_key=CSF).as_dict()
    groups = {row["ref_id"]: row for row in report["groups"]}
    rows = {row["ref_id"]: row for row in report["controls"]}

    assert (groups["RS.MA"]["mapped_cases"], groups["RS"]["mapped_cases"]) == (1, 1)
    assert groups["RS"]["covered_controls"] == 0  # coverage counts subcategories only
    assert (rows["RS.MA"]["mapped_cases"], rows["RS.MA"]["function"], rows["RS.MA"]["is_gap"]) == (
        1,
        "RS",
        False,
    )
    assert report["summary"]["mapped_cases"] == 1


def test_a_case_with_a_far_larger_id_than_the_others_counts_like_any_other(catalogs, open_case):
    """The report looks cases up by id; ids far apart (not autoincrement-dense) must change nothing."""
    near = open_case(severity=Severity.HIGH)
    (far,) = Case.objects.bulk_create(
        [
            Case(
                pk=near.pk + 10**12,
                title="imported",
                kind=CaseKind.ALERT_TRIAGE,
                severity=Severity.LOW,
                state=CaseState.VERIFIED,
                has_evidence=True,
            )
        ]
    )
    opened = timezone.now() - timedelta(days=2)
    _timestamps(near, opened=opened, due=timezone.now() - timedelta(hours=1))
    _timestamps(far, opened=opened, hours_to_verified=5)
    _map(near, "RS.AN-03")
    _map(far, "RS.AN-03", "RS.AN-06")

    report = _report()
    controls = {row["ref_id"]: row for row in report["controls"]}
    groups = {row["ref_id"]: row for row in report["groups"]}

    # The imported case has no transition the audit chain proves, so only `near` is traceable.
    assert _figures(controls["RS.AN-03"]) == _expected(2, 1, 1, 0, 0, 1, 5.0)
    assert controls["RS.AN-03"]["by_state"] == {"identified": 1, "verified": 1}
    assert _figures(controls["RS.AN-06"]) == _expected(1, 1, 0, 0, 0, 0, 5.0)
    assert _figures(groups["RS.AN"]) == _expected(2, 1, 1, 0, 0, 1, 5.0)
    assert _figures(report["summary"]) == _expected(2, 1, 1, 0, 0, 1, 5.0)
