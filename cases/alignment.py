"""The framework alignment report: control by control, what the organisation actually did.

Every figure comes from aggregate queries over the active case-to-control mappings of one framework, for
the cases identified (opened) in the period. The number of queries is fixed, whatever the number of cases:

the framework's controls; per-control counts (mapped cases, evidence, traceability, four-eyes, overdue);
per-control counts by state; per-control medians (window functions: only the middle rows come back); the
same counts over distinct cases per category and per function; the framework-wide figures and median.
"""

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from cases.models import (
    OPEN_STATES,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    CaseControlMapping,
    CaseState,
    CaseTransition,
    Evidence,
    Severity,
)
from frameworks.models import Control, ControlKind, Framework

LEAF_KINDS = (ControlKind.SUBCATEGORY, ControlKind.RISK)


@dataclass(frozen=True)
class Figures:
    """Counts over a set of cases, and the shares auditors read."""

    mapped_cases: int = 0
    with_evidence: int = 0
    traceable: int = 0
    severe_closures: int = 0
    severe_closures_approved: int = 0
    overdue_open: int = 0
    median_hours_to_verified: float | None = None

    @staticmethod
    def _share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    @property
    def evidence_coverage(self) -> float | None:
        return self._share(self.with_evidence, self.mapped_cases)

    @property
    def traceability(self) -> float | None:
        return self._share(self.traceable, self.mapped_cases)

    @property
    def four_eyes_coverage(self) -> float | None:
        return self._share(self.severe_closures_approved, self.severe_closures)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "evidence_coverage": self.evidence_coverage,
            "traceability": self.traceability,
            "four_eyes_coverage": self.four_eyes_coverage,
        }


@dataclass(frozen=True)
class ControlRow:
    ref_id: str
    kind: str
    title: str
    statement: str
    category: str | None
    function: str | None
    by_state: dict[str, int]
    figures: Figures

    @property
    def is_gap(self) -> bool:
        return self.kind in LEAF_KINDS and self.figures.mapped_cases == 0


@dataclass(frozen=True)
class GroupRow:
    """A function or category: how many of its controls have cases, and the figures over its cases."""

    ref_id: str
    kind: str
    title: str
    controls: int
    covered_controls: int
    figures: Figures

    @property
    def control_coverage(self) -> float | None:
        return Figures._share(self.covered_controls, self.controls)


@dataclass(frozen=True)
class AlignmentReport:
    framework_key: str
    framework_name: str
    framework_version: str
    framework_license: str
    since: date | None
    until: date | None
    generated_at: datetime
    summary: GroupRow
    groups: list[GroupRow] = field(default_factory=list)
    controls: list[ControlRow] = field(default_factory=list)

    @property
    def gaps(self) -> list[ControlRow]:
        return [row for row in self.controls if row.is_gap]

    def as_dict(self) -> dict[str, Any]:
        def group(row: GroupRow) -> dict[str, Any]:
            return {
                "ref_id": row.ref_id,
                "kind": row.kind,
                "title": row.title,
                "controls": row.controls,
                "covered_controls": row.covered_controls,
                "control_coverage": row.control_coverage,
                **row.figures.as_dict(),
            }

        return {
            "framework": {
                "key": self.framework_key,
                "name": self.framework_name,
                "version": self.framework_version,
                "license": self.framework_license,
            },
            "period": {
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
            },
            "generated_at": self.generated_at.isoformat(),
            "summary": group(self.summary),
            "groups": [group(row) for row in self.groups],
            "controls": [
                {
                    "ref_id": row.ref_id,
                    "kind": row.kind,
                    "title": row.title,
                    "category": row.category,
                    "function": row.function,
                    "by_state": row.by_state,
                    "is_gap": row.is_gap,
                    **row.figures.as_dict(),
                }
                for row in self.controls
            ],
            "gaps": [row.ref_id for row in self.gaps],
        }


def _period_bounds(since: date | None, until: date | None) -> Q:
    bounds = Q()
    zone = timezone.get_current_timezone()
    if since is not None:
        bounds &= Q(case__created_at__gte=datetime.combine(since, time.min, tzinfo=zone))
    if until is not None:
        bounds &= Q(case__created_at__lt=datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone))
    return bounds


def _mapping_rows(
    framework: Framework, since: date | None, until: date | None
) -> QuerySet[CaseControlMapping]:
    case = OuterRef("case_id")
    return (
        CaseControlMapping.objects.filter(is_active=True, control__framework=framework)
        .filter(_period_bounds(since, until))
        .annotate(
            has_evidence=Exists(Evidence.objects.filter(case_id=case)),
            # Traceable: every transition after opening names who did it (enforced) and why.
            untraceable=Exists(CaseTransition.objects.filter(case_id=case, reason="").exclude(name="open")),
            second_person_approved=Exists(
                Approval.objects.filter(
                    case_id=case, kind=ApprovalKind.CLOSURE, status=ApprovalStatus.APPROVED
                ).exclude(decided_by_id=F("requested_by_id"))
            ),
        )
    )


def _counts(distinct: bool, now: datetime) -> dict[str, Count]:
    severe_closed = Q(case__severity__gte=Severity.HIGH, case__state=CaseState.CLOSED)
    return {
        "mapped_cases": Count("case_id", distinct=distinct),
        "with_evidence": Count("case_id", distinct=distinct, filter=Q(has_evidence=True)),
        "traceable": Count("case_id", distinct=distinct, filter=Q(untraceable=False)),
        "severe_closures": Count("case_id", distinct=distinct, filter=severe_closed),
        "severe_closures_approved": Count(
            "case_id", distinct=distinct, filter=severe_closed & Q(second_person_approved=True)
        ),
        "overdue_open": Count(
            "case_id", distinct=distinct, filter=Q(case__state__in=OPEN_STATES, case__due_at__lt=now)
        ),
    }


def _medians(rows: QuerySet[CaseControlMapping], partition: str | None) -> dict[Any, float]:
    """Median hours from identified to verified per partition, reading back only the middle rows."""
    verified = rows.filter(case__verified_at__isnull=False).annotate(
        duration=ExpressionWrapper(
            F("case__verified_at") - F("case__created_at"), output_field=DurationField()
        )
    )
    over: dict[str, Any] = {"partition_by": [F(partition)]} if partition else {}
    ranked = verified.annotate(
        position=Window(RowNumber(), order_by=[F("duration").asc(), F("case_id").asc()], **over),
        total=Window(Count("id"), **over),
    )
    middle = ranked.filter(Q(position=(F("total") + 1) / 2) | Q(position=(F("total") + 2) / 2))
    collected: dict[Any, list[timedelta]] = {}
    for key, duration in middle.values_list(partition or "control__framework_id", "duration"):
        collected.setdefault(key, []).append(duration)
    return {
        key: round(sum(values, timedelta()).total_seconds() / len(values) / 3600, 2)
        for key, values in collected.items()
    }


def alignment_report(
    *, framework_key: str, since: date | None = None, until: date | None = None
) -> AlignmentReport:
    framework = Framework.objects.get(key=framework_key)
    now = timezone.now()
    controls = list(Control.objects.filter(framework=framework).select_related("parent").order_by("position"))
    rows = _mapping_rows(framework, since, until)

    per_control = {
        entry.pop("control_id"): entry for entry in rows.values("control_id").annotate(**_counts(False, now))
    }
    by_state: dict[int, dict[str, int]] = {}
    for control_id, state, count in rows.values_list("control_id", "case__state").annotate(n=Count("id")):
        by_state.setdefault(control_id, {})[state] = count
    medians = _medians(rows, "control_id")

    by_category = {
        entry.pop("control__parent_id"): entry
        for entry in rows.values("control__parent_id").annotate(**_counts(True, now))
    }
    by_function = {
        entry.pop("control__parent__parent_id"): entry
        for entry in rows.values("control__parent__parent_id").annotate(**_counts(True, now))
    }
    overall = rows.aggregate(**_counts(True, now))
    overall_median = _medians(rows, None).get(framework.pk)

    by_id = {control.pk: control for control in controls}

    def ancestors(control: Control) -> tuple[Control | None, Control | None]:
        parent = by_id.get(control.parent_id) if control.parent_id else None
        grandparent = by_id.get(parent.parent_id) if parent is not None and parent.parent_id else None
        if control.kind == ControlKind.SUBCATEGORY:
            return parent, grandparent
        if control.kind == ControlKind.CATEGORY:
            return None, parent
        return None, None

    control_rows = []
    for control in controls:
        category, function = ancestors(control)
        control_rows.append(
            ControlRow(
                ref_id=control.ref_id,
                kind=control.kind,
                title=control.title,
                statement=control.statement,
                category=category.ref_id if category else None,
                function=function.ref_id if function else None,
                by_state=by_state.get(control.pk, {}),
                figures=Figures(
                    **per_control.get(control.pk, {}), median_hours_to_verified=medians.get(control.pk)
                ),
            )
        )

    leaves = [row for row in control_rows if row.kind in LEAF_KINDS]
    groups = []
    for control in controls:
        if control.kind not in (ControlKind.FUNCTION, ControlKind.CATEGORY):
            continue
        attribute = "function" if control.kind == ControlKind.FUNCTION else "category"
        members = [row for row in leaves if getattr(row, attribute) == control.ref_id]
        source = by_function if control.kind == ControlKind.FUNCTION else by_category
        groups.append(
            GroupRow(
                ref_id=control.ref_id,
                kind=control.kind,
                title=control.title or control.statement[:80],
                controls=len(members),
                covered_controls=sum(1 for row in members if row.figures.mapped_cases),
                figures=Figures(**source.get(control.pk, {})),
            )
        )
    summary = GroupRow(
        ref_id=framework.key,
        kind="framework",
        title=f"{framework.name} {framework.version}",
        controls=len(leaves),
        covered_controls=sum(1 for row in leaves if row.figures.mapped_cases),
        figures=Figures(**overall, median_hours_to_verified=overall_median),
    )
    return AlignmentReport(
        framework_key=framework.key,
        framework_name=framework.name,
        framework_version=framework.version,
        framework_license=framework.license,
        since=since,
        until=until,
        generated_at=now,
        summary=summary,
        groups=groups,
        controls=control_rows,
    )
