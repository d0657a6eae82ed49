"""The framework alignment report: control by control, what the organisation actually did.

Every figure comes from aggregate queries over the active case-to-control mappings of one framework, for
the cases identified (opened) in the period. The number of queries is fixed, whatever the number of cases:

the framework's controls; then per control, per category, per function and for the whole framework, one
GROUP BY over (key, case state, the case's facts) that yields every count and the counts by state, and one
median query (window functions over (key, case) groups: only the middle rows come back). Group and
framework figures count each case once, however many of their controls it is mapped to.
"""

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connections
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models import Case as DbCase
from django.db.models.functions import RowNumber
from django.utils import timezone

from cases.models import (
    OPEN_STATES,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
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


def _period_bounds(since: date | None, until: date | None, path: str = "case__") -> Q:
    bounds = Q()
    zone = timezone.get_current_timezone()
    if since is not None:
        bounds &= Q(**{f"{path}created_at__gte": datetime.combine(since, time.min, tzinfo=zone)})
    if until is not None:
        bounds &= Q(
            **{f"{path}created_at__lt": datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)}
        )
    return bounds


# The per-case facts, as boolean SQL expressions over a mapping row. Each membership test is an uncorrelated
# `case_id IN (SELECT ...)`: both databases build the set once per query and probe it per row, where a
# correlated EXISTS would run a subquery for every mapping row.
FLAGS = ("has_evidence", "untraceable", "severe_closed", "second_person_approved", "overdue")


def _flag_expressions(now: datetime, path: str) -> dict[str, ExpressionWrapper]:
    """`path` leads from the queried model to the case: "case__" from a mapping row, "" from a case."""
    case_id = "case_id" if path else "id"

    def boolean(condition: Q) -> ExpressionWrapper:
        return ExpressionWrapper(condition, output_field=BooleanField())

    return {
        "has_evidence": boolean(Q(**{f"{case_id}__in": Evidence.objects.values("case_id")})),
        # Traceable: every transition after opening names who did it (enforced) and why.
        "untraceable": boolean(
            Q(
                **{
                    f"{case_id}__in": CaseTransition.objects.filter(reason="")
                    .exclude(name="open")
                    .values("case_id")
                }
            )
        ),
        "severe_closed": boolean(
            Q(**{f"{path}severity__gte": Severity.HIGH, f"{path}state": CaseState.CLOSED})
        ),
        "second_person_approved": boolean(
            Q(
                **{
                    f"{case_id}__in": Approval.objects.filter(
                        kind=ApprovalKind.CLOSURE, status=ApprovalStatus.APPROVED, decided_by__isnull=False
                    )
                    .exclude(decided_by_id=F("requested_by_id"))
                    .values("case_id")
                }
            )
        ),
        "overdue": boolean(Q(**{f"{path}state__in": OPEN_STATES, f"{path}due_at__lt": now})),
    }


def _mapping_rows(
    framework: Framework, since: date | None, until: date | None
) -> QuerySet[CaseControlMapping]:
    return CaseControlMapping.objects.filter(is_active=True, control__framework=framework).filter(
        _period_bounds(since, until)
    )


# The category and the function a mapping row counts under: a subcategory's parent and grandparent; a
# category itself and its parent; a function itself. Risks (OWASP) have neither.
CATEGORY_KEY = DbCase(
    When(control__kind=ControlKind.SUBCATEGORY, then=F("control__parent_id")),
    When(control__kind=ControlKind.CATEGORY, then=F("control_id")),
    default=None,
    output_field=IntegerField(),
)
FUNCTION_KEY = DbCase(
    When(control__kind=ControlKind.SUBCATEGORY, then=F("control__parent__parent_id")),
    When(control__kind=ControlKind.CATEGORY, then=F("control__parent_id")),
    When(control__kind=ControlKind.FUNCTION, then=F("control_id")),
    default=None,
    output_field=IntegerField(),
)


def _tallies(
    rows: QuerySet[Any], key: Any, now: datetime, *, distinct: bool, path: str = "case__"
) -> dict[Any, tuple[dict[str, int], dict[str, int]]]:
    """Figures and counts by state per key, from one GROUP BY over (key, state, the case's facts).

    A case has one state and one set of facts, so it falls in exactly one group per key: adding up the
    groups' distinct counts gives the distinct count per key.
    """
    grouped = (
        rows.annotate(key=key, state_=F(f"{path}state"), **_flag_expressions(now, path))
        .values_list("key", "state_", *FLAGS)
        .annotate(n=Count("case_id" if path else "id", distinct=distinct))
        .order_by()
    )
    found: dict[Any, tuple[dict[str, int], dict[str, int]]] = {}
    for found_key, state, has_evidence, untraceable, severe_closed, approved, overdue, n in grouped:
        counts, states = found.setdefault(found_key, (dict.fromkeys(COUNTED, 0), {}))
        states[state] = states.get(state, 0) + n
        counts["mapped_cases"] += n
        counts["with_evidence"] += n if has_evidence else 0
        counts["traceable"] += 0 if untraceable else n
        counts["severe_closures"] += n if severe_closed else 0
        counts["severe_closures_approved"] += n if severe_closed and approved else 0
        counts["overdue_open"] += n if overdue else 0
    return found


COUNTED = (
    "mapped_cases",
    "with_evidence",
    "traceable",
    "severe_closures",
    "severe_closures_approved",
    "overdue_open",
)


class Elapsed(Func):
    """Seconds from the second timestamp to the first (later, earlier), in native SQL.

    Django's own timestamp subtraction calls a Python function per row on SQLite, which made the median
    queries the slowest part of the report.
    """

    arity = 2
    output_field = FloatField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra,
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))", arg_joiner=" - ", **extra
        )


def _medians(
    rows: QuerySet[Any], key: Any, *, distinct: bool = True, path: str = "case__"
) -> dict[Any, float]:
    """Median hours from identified to verified per key, over distinct cases, reading back the middle rows.

    Grouping by (key, case) first makes a case count once per key however many of the key's controls it
    is mapped to; the window functions then run over the groups.
    """
    verified = rows.filter(**{f"{path}verified_at__isnull": False}).annotate(
        key=key, the_case=F("case_id" if path else "id")
    )
    elapsed = Elapsed(f"{path}verified_at", f"{path}created_at")
    per_case = (
        verified.values("key", "the_case").annotate(duration=Max(elapsed)).order_by()
        if distinct
        else verified.annotate(duration=elapsed).values("key", "the_case", "duration").order_by()
    )
    partition: dict[str, Any] = {"partition_by": [F("key")]}
    ranked = per_case.annotate(
        position=Window(RowNumber(), order_by=[F("duration").asc(), F("the_case").asc()], **partition),
        total=Window(Count("the_case"), **partition),
    )
    # Django 5.2 puts a filter's arithmetic on window functions into the GROUP BY of a grouped query (a SQL
    # error), so the ranked groups are filtered in an outer SELECT written here.
    sql, params = ranked.values_list("key", "duration", "position", "total").query.sql_with_params()
    middle = (
        f'SELECT ranked."key", ranked."duration" FROM ({sql}) ranked '
        'WHERE ranked."position" IN ((ranked."total" + 1) / 2, (ranked."total" + 2) / 2)'
    )
    collected: dict[Any, list[float]] = {}
    with connections[rows.db].cursor() as cursor:
        cursor.execute(middle, params)
        for found_key, seconds in cursor.fetchall():
            collected.setdefault(found_key, []).append(float(seconds))
    return {key: round(sum(values) / len(values) / 3600, 2) for key, values in collected.items()}


def alignment_report(
    *, framework_key: str, since: date | None = None, until: date | None = None
) -> AlignmentReport:
    framework = Framework.objects.get(key=framework_key)
    now = timezone.now()
    controls = list(Control.objects.filter(framework=framework).select_related("parent").order_by("position"))
    rows = _mapping_rows(framework, since, until)

    per_control = _tallies(rows, F("control_id"), now, distinct=False)
    medians = _medians(rows, F("control_id"), distinct=False)  # a case is mapped to a control once
    by_category = _tallies(rows, CATEGORY_KEY, now, distinct=True)
    category_medians = _medians(rows, CATEGORY_KEY)
    by_function = _tallies(rows, FUNCTION_KEY, now, distinct=True)
    function_medians = _medians(rows, FUNCTION_KEY)
    # The framework as a whole: each mapped case once, counted from the cases themselves (no DISTINCT).
    mapped = Case.objects.filter(
        _period_bounds(since, until, path=""),
        Exists(rows.filter(case_id=OuterRef("pk")).values("pk")),
    )
    overall = _tallies(mapped, Value(framework.pk), now, distinct=False, path="").get(framework.pk, ({}, {}))[
        0
    ]
    overall_median = _medians(mapped, Value(framework.pk), distinct=False, path="").get(framework.pk)

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
                by_state=per_control.get(control.pk, ({}, {}))[1],
                figures=Figures(
                    **per_control.get(control.pk, ({}, {}))[0],
                    median_hours_to_verified=medians.get(control.pk),
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
        source, source_medians = (
            (by_function, function_medians)
            if control.kind == ControlKind.FUNCTION
            else (by_category, category_medians)
        )
        groups.append(
            GroupRow(
                ref_id=control.ref_id,
                kind=control.kind,
                title=control.title or control.statement[:80],
                controls=len(members),
                covered_controls=sum(1 for row in members if row.figures.mapped_cases),
                figures=Figures(
                    **source.get(control.pk, ({}, {}))[0],
                    median_hours_to_verified=source_medians.get(control.pk),
                ),
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
