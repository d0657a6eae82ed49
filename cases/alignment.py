"""The framework alignment report: control by control, what the organisation actually did.

Every figure comes from the active case-to-control mappings of one framework, for the cases identified
(opened) in the period, in a fixed number of queries whatever the number of cases: the framework's
controls; one statement for the counts of every level; one for the medians of every level.

The per-case facts (evidence, traceability, second-person closure approval) are columns of the case, kept by
the services; each mapping row carries its control's framework, category and function. So every level is a
pass over an index of the mappings, in key order, joined to one case row per mapped case:

- per control: the mapping rows themselves (a case is mapped to a control once);
- per category, per function: the DISTINCT (key, case) pairs, so a case mapped to two controls of a
  category counts once for it;
- the framework: the mapped cases.

Each pass adds up the case's facts (SUM of 0/1) grouped by key, the counts by state included. The medians
rank the elapsed times of the same rows (verified cases only) with window functions over every level at
once; only the middle rows come back.
"""

import operator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from cases.models import OPEN_STATES, Case, CaseControlMapping, CaseState, Severity
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


def _period_sql(since: date | None, until: date | None) -> tuple[str, list[Any]]:
    sql, params = "", []
    zone = timezone.get_current_timezone()
    if since is not None:
        sql += " AND c.created_at >= %s"
        params.append(datetime.combine(since, time.min, tzinfo=zone))
    if until is not None:
        sql += " AND c.created_at < %s"
        params.append(datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone))
    return sql, [connection.ops.adapt_datetimefield_value(value) for value in params]


COUNTED = (
    "mapped_cases",
    "with_evidence",
    "traceable",
    "severe_closures",
    "severe_closures_approved",
    "overdue_open",
)
STATES = tuple(CaseState.values)
LEVELS = ("control", "category", "function", "framework")


class _Tally:
    """Figures, counts by state and elapsed times (seconds) of one key's cases, as they are added up."""

    def __init__(self) -> None:
        self.sums = [0] * (1 + len(FLAGS))
        self.seconds: list[str] = []  # comma-separated, parsed once for the median

    def add(self, sums: list[int], seconds: str | None) -> None:
        self.sums = list(map(operator.add, self.sums, sums))
        if seconds:
            self.seconds.append(seconds)

    def counts(self) -> dict[str, int]:
        return dict(zip(COUNTED, self.sums[: len(COUNTED)], strict=True))

    def by_state(self) -> dict[str, int]:
        return {state: n for state, n in zip(STATES, self.sums[len(COUNTED) :], strict=True) if n}

    def median_hours(self) -> float | None:
        if not self.seconds:
            return None
        ordered = sorted(map(float, ",".join(self.seconds).split(",")))
        middle = (len(ordered) - 1) // 2
        values = ordered[middle : middle + 1 + (len(ordered) + 1) % 2]
        return round(sum(values) / len(values) / 3600, 2)


# What each mapped case adds to its keys, as 0/1 columns (COUNT(*) comes first): the figures, then the states.
FLAGS = (
    "c.has_evidence",
    "c.traceable",
    "{severe}",
    "{severe} AND c.closure_second_person_approved",
    "c.state IN ({open_states}) AND c.due_at < %s",
    *(f"c.state = '{state}'" for state in CaseState.values),
)


def _tally_columns(now: datetime) -> tuple[str, list[Any]]:
    """COUNT(*), the SUM of each flag, and the elapsed seconds of the verified cases joined by commas."""
    severe = f"c.severity >= {int(Severity.HIGH)} AND c.state = '{CaseState.CLOSED}'"
    open_states = ", ".join(f"'{state}'" for state in OPEN_STATES)
    sums = [
        f"SUM(CASE WHEN {flag.format(severe=severe, open_states=open_states)} THEN 1 ELSE 0 END)"
        for flag in FLAGS
    ]
    if connection.vendor == "postgresql":
        elapsed = "CAST(EXTRACT(EPOCH FROM (c.verified_at - c.created_at)) AS DOUBLE PRECISION)"
        seconds = f"STRING_AGG(CAST({elapsed} AS TEXT), ',')"
    else:
        seconds = "GROUP_CONCAT((julianday(c.verified_at) - julianday(c.created_at)) * 86400.0)"
    return ", ".join(["COUNT(*)", *sums, seconds]), [connection.ops.adapt_datetimefield_value(now)]


def _bits(ids: list[int], column: str) -> list[tuple[str, list[int]]]:
    """Masks of at most 60 keys each: SUM(DISTINCT bit) over a case's mapping rows ORs its keys' bits."""
    chunks = [ids[start : start + 60] for start in range(0, len(ids), 60)] or [[]]
    # PostgreSQL's BIT_OR needs no per-group sort; SQLite has no BIT_OR.
    combine = "BIT_OR({})" if connection.vendor == "postgresql" else "SUM(DISTINCT {})"
    masks = []
    for chunk in chunks:
        branches = " ".join(f"WHEN {key} THEN {1 << bit}" for bit, key in enumerate(chunk))
        mask = combine.format(f"CASE m.{column} {branches} ELSE 0 END")
        masks.append((mask if chunk else "0", chunk))
    return masks


def _tallies(
    framework_id: int, period: tuple[str, list[Any]], now: datetime, controls: list[Control]
) -> dict[str, dict[int, _Tally]]:
    """Every figure of every level in two passes over the framework's active mappings.

    Per control: the mapping rows in (control, case) order, each joined to its case, grouped by control.

    Per category, per function and for the framework: the mapping rows in case order, folded into one row
    per case with bit masks of its categories and functions (SUM(DISTINCT bit)), joined to the case and
    grouped by the masks; each group's sums then go to every category and function of its masks. A case
    counts once per key however many of the key's controls it is mapped to, and once for the framework.
    """
    mapping, case = CaseControlMapping._meta.db_table, Case._meta.db_table
    where, period_params = period
    columns, column_params = _tally_columns(now)
    active = "m.framework_id = %s AND m.is_active = %s"
    found: dict[str, dict[int, _Tally]] = {level: {} for level in LEVELS}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT m.control_id, {columns} FROM {mapping} m INNER JOIN {case} c ON c.id = m.case_id "
            f"WHERE {active}{where} GROUP BY m.control_id",
            [*column_params, framework_id, True, *period_params],
        )
        for control_id, *sums, seconds in cursor.fetchall():
            found["control"][control_id] = tally = _Tally()
            tally.add(sums, seconds)

        masks: list[tuple[str, str, list[int]]] = [
            (level, *chunk)
            for level, kind in (("category", ControlKind.CATEGORY), ("function", ControlKind.FUNCTION))
            for chunk in _bits([control.pk for control in controls if control.kind == kind], f"{level}_id")
        ]
        names = [f"g{position}" for position in range(len(masks))]
        folded = ", ".join(f"{sql} AS {name}" for (_, sql, _), name in zip(masks, names, strict=True))
        cursor.execute(
            f"SELECT {', '.join(f'x.{name}' for name in names)}, {columns} FROM ("
            f"SELECT m.case_id, {folded} "
            f"FROM {mapping} m WHERE {active} GROUP BY m.case_id) x "
            f"INNER JOIN {case} c ON c.id = x.case_id WHERE 1 = 1{where} "
            f"GROUP BY {', '.join(f'x.{name}' for name in names)}",
            [*column_params, framework_id, True, *period_params],
        )
        overall = found["framework"].setdefault(0, _Tally())
        for row in cursor.fetchall():
            values, sums, seconds = row[: len(masks)], list(row[len(masks) : -1]), row[-1]
            overall.add(sums, seconds)
            for (level, _, keys), mask in zip(masks, values, strict=True):
                remaining, tallies = int(mask or 0), found[level]
                while remaining:
                    lowest = remaining & -remaining
                    remaining ^= lowest
                    key = keys[lowest.bit_length() - 1]
                    target = tallies.get(key)
                    if target is None:
                        tallies[key] = target = _Tally()
                    target.add(sums, seconds)
    return found


def alignment_report(
    *, framework_key: str, since: date | None = None, until: date | None = None
) -> AlignmentReport:
    framework = Framework.objects.get(key=framework_key)
    now = timezone.now()
    controls = list(Control.objects.filter(framework=framework).order_by("position"))
    tallies = _tallies(framework.pk, _period_sql(since, until), now, controls)

    def figures(level: str, key: int) -> tuple[dict[str, Any], dict[str, int]]:
        tally = tallies[level].get(key)
        if tally is None or not tally.sums[0]:
            return {}, {}
        return {**tally.counts(), "median_hours_to_verified": tally.median_hours()}, tally.by_state()

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
        counts, by_state = figures("control", control.pk)
        control_rows.append(
            ControlRow(
                ref_id=control.ref_id,
                kind=control.kind,
                title=control.title,
                statement=control.statement,
                category=category.ref_id if category else None,
                function=function.ref_id if function else None,
                by_state=by_state,
                figures=Figures(**counts),
            )
        )

    leaves = [row for row in control_rows if row.kind in LEAF_KINDS]
    groups = []
    for control in controls:
        if control.kind not in (ControlKind.FUNCTION, ControlKind.CATEGORY):
            continue
        attribute = "function" if control.kind == ControlKind.FUNCTION else "category"
        members = [row for row in leaves if getattr(row, attribute) == control.ref_id]
        groups.append(
            GroupRow(
                ref_id=control.ref_id,
                kind=control.kind,
                title=control.title or control.statement[:80],
                controls=len(members),
                covered_controls=sum(1 for row in members if row.figures.mapped_cases),
                figures=Figures(**figures(attribute, control.pk)[0]),
            )
        )
    summary = GroupRow(
        ref_id=framework.key,
        kind="framework",
        title=f"{framework.name} {framework.version}",
        controls=len(leaves),
        covered_controls=sum(1 for row in leaves if row.figures.mapped_cases),
        figures=Figures(**figures("framework", 0)[0]),
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
