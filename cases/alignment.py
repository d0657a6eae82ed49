"""The framework alignment report: control by control, what the organisation actually did.

Every figure comes from the active case-to-control mappings of one framework, for the cases identified
(opened) in the period, in a fixed number of queries whatever the number of cases: how far the audit chain
is proven (audit.selectors.audit_proven_through: its last check and a walk of what came after it); the
framework; its controls; one statement over the cases; one over the mappings.

The per-case facts (evidence, traceability, second-person closure approval) are columns of the case, kept by
the services. Neither statement joins: joining every mapping row to its case was most of the report's time.

A case is traceable when every transition after opening gave a reason (Case.traceable) and the audit chain
proves every transition: the chain is intact up to its latest transition's entry (Case.chain_seq), and none
of its transition rows lacks an entry (written behind the services' back, or before the chain existed; the
partial index transition_unproven holds exactly those rows, so the check is one probe of a near-empty index).
Cases from before the chain have no chain_seq and never count.

- The cases: one scan of the period's cases returns each case's id with its *profile*, a small integer
  packing its state and its 0/1 facts, and the elapsed seconds of the verified ones.
- The mappings: the framework's active mappings, read off an index, return each control's case ids.

Python then adds it up per key: a control's cases are its ids (a case is mapped to a control once); a
category's, a function's and the framework's cases are the union of their controls' ids, so a case mapped to
two controls of a category counts once for it. A key's figures are its cases' profiles counted and
multiplied out; its median is read off its verified cases ranked by elapsed time.
"""

from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from django.db import connection
from django.utils import timezone

from audit.selectors import audit_proven_through
from cases.models import (
    OPEN_STATES,
    Case,
    CaseControlMapping,
    CaseState,
    CaseTransition,
    Severity,
    control_groups,
)
from frameworks.models import Control, ControlKind, Framework

LEAF_KINDS = (ControlKind.SUBCATEGORY, ControlKind.RISK)
V = TypeVar("V")

# What "traceable" means, in the words every rendering of the report and its API schema use.
TRACEABLE_MEANS = "every transition gave a reason and is proven by the audit chain"


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
    # The last audit chain entry proven intact when the report was made: the traceable cases' transitions
    # all lie at or before it.
    chain_proven_through: int = 0

    @property
    def gaps(self) -> list[ControlRow]:
        return [row for row in self.controls if row.is_gap]

    @property
    def traceability_note(self) -> str:
        return (
            f"Traceable: {TRACEABLE_MEANS} (intact up to entry #{self.chain_proven_through}); cases from "
            "before the audit chain do not count."
        )

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
            "audit_chain": {"proven_through": self.chain_proven_through},
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

# A case's profile: the bits of what it adds to every key it counts under, its state's index above them.
DUE_PASSED, APPROVED, TRACEABLE, EVIDENCE, SEVERE = (1 << bit for bit in range(5))
STATE_SHIFT = 5
# Bits of the largest profile, an unknown state (index len(STATES)) with every flag set: the cases statement
# sends each case as id * 2**PROFILE_BITS + profile.
PROFILE_BITS = (((len(STATES) + 1) << STATE_SHIFT) - 1).bit_length()


def _contribution(profile: int) -> tuple[int, ...]:
    """What a case of this profile adds to its keys: COUNTED, then one count per state."""
    index = profile >> STATE_SHIFT
    state = STATES[index] if index < len(STATES) else None
    severe_closure = bool(profile & SEVERE) and state == CaseState.CLOSED
    return (
        1,
        int(bool(profile & EVIDENCE)),
        int(bool(profile & TRACEABLE)),
        int(severe_closure),
        int(severe_closure and bool(profile & APPROVED)),
        int(bool(profile & DUE_PASSED) and state in OPEN_STATES),
        *(int(state == other) for other in STATES),
    )


class _Tally:
    """Figures and counts by state of one key's cases, and the median of their elapsed times."""

    def __init__(self, sums: list[int], median_seconds: float | None) -> None:
        self.sums = sums
        self.median_seconds = median_seconds

    def counts(self) -> dict[str, int]:
        return dict(zip(COUNTED, self.sums[: len(COUNTED)], strict=True))

    def by_state(self) -> dict[str, int]:
        return {state: n for state, n in zip(STATES, self.sums[len(COUNTED) :], strict=True) if n}

    def median_hours(self) -> float | None:
        return None if self.median_seconds is None else round(self.median_seconds / 3600, 2)


def _integers_sql(expression: str) -> str:
    """An aggregate of integers that reaches Python cheaply: an array on PostgreSQL (psycopg parses it in
    C), the numbers joined by commas on SQLite, which has no arrays."""
    if connection.vendor == "postgresql":
        return f"ARRAY_AGG({expression})"
    return f"GROUP_CONCAT({expression})"


def _integers(aggregate: list[int] | str | None) -> list[int]:
    """What _integers_sql sent, as a list (NULL when there was nothing to aggregate)."""
    if isinstance(aggregate, str):
        return list(map(int, aggregate.split(",")))
    return aggregate or []


def _lookup(pairs: Iterable[tuple[int, V]], count: int, top: int) -> Callable[[int], V | None]:
    """The value of each of `count` ids, None for any other id up to `top`.

    A list indexed by id when the ids are dense, as autoincrement keys are (several times faster than a
    dict for the hundreds of thousands of look-ups of a report); a dict when they are not, so that a few
    very large ids cannot make the list huge.
    """
    if top < 4 * count + 1024:
        table: list[V | None] = [None] * (top + 1)
        for case_id, value in pairs:
            table[case_id] = value
        return table.__getitem__
    return dict(pairs).get


def _case_facts(
    period: tuple[str, list[Any]], now: datetime, proven_through: int
) -> tuple[list[int], list[str]]:
    """One scan of the period's cases, no join: each case's id and profile packed into one integer, and
    "id,seconds" of each verified case (NULL, so left out, for the others), each pair written whole so
    that the pairs cannot come apart.

    The elapsed seconds are the expression, and the text, that the medians always came from. A traceable
    case's transition rows without a chain entry are looked for only when its own facts pass, off the
    partial index transition_unproven (NOT EXISTS rather than NOT IN: however many such rows there are, each
    case costs one index probe, never a scan).
    """
    where, period_params = period
    if connection.vendor == "postgresql":
        case_id = "CAST(c.id AS BIGINT)"
        elapsed = "CAST(EXTRACT(EPOCH FROM (c.verified_at - c.created_at)) AS DOUBLE PRECISION)"
        pair = f"CAST(c.id AS TEXT) || ',' || CAST({elapsed} AS TEXT)"
        pairs = f"STRING_AGG({pair}, ',')"
    else:
        case_id = "c.id"
        elapsed = "(julianday(c.verified_at) - julianday(c.created_at)) * 86400.0"
        pairs = f"GROUP_CONCAT(c.id || ',' || ({elapsed}))"
    states = " ".join(f"WHEN '{state}' THEN {index}" for index, state in enumerate(STATES))
    profile = (
        f"(CASE c.state {states} ELSE {len(STATES)} END) * {1 << STATE_SHIFT}"
        f" + CASE WHEN c.severity >= {int(Severity.HIGH)} THEN {SEVERE} ELSE 0 END"
        f" + CASE WHEN c.has_evidence THEN {EVIDENCE} ELSE 0 END"
        f" + CASE WHEN c.traceable AND c.chain_seq IS NOT NULL AND c.chain_seq <= %s AND NOT EXISTS ("
        f"SELECT 1 FROM {CaseTransition._meta.db_table} t WHERE t.case_id = c.id AND t.audit_seq IS NULL"
        f") THEN {TRACEABLE} ELSE 0 END"
        f" + CASE WHEN c.closure_second_person_approved THEN {APPROVED} ELSE 0 END"
        f" + CASE WHEN c.due_at < %s THEN {DUE_PASSED} ELSE 0 END"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_integers_sql(f'{case_id} * {1 << PROFILE_BITS} + {profile}')}, {pairs} "
            f"FROM {Case._meta.db_table} c WHERE 1 = 1{where}",
            [proven_through, connection.ops.adapt_datetimefield_value(now), *period_params],
        )
        profiles, seconds = cursor.fetchone()
    return _integers(profiles), seconds.split(",") if seconds else []


def _mapped_cases(framework_id: int) -> dict[int, list[int]]:
    """The ids of each control's cases: for each control of the framework, its active mappings read off the
    (framework, is_active, control, case) index alone, one range per control (PostgreSQL would otherwise
    scan every framework's mappings and hash this one's)."""
    mappings = (
        f"FROM {CaseControlMapping._meta.db_table} m "
        "WHERE m.framework_id = %s AND m.is_active = %s AND m.control_id = c.id"
    )
    if connection.vendor == "postgresql":
        case_ids = f"ARRAY(SELECT m.case_id {mappings})"
    else:
        case_ids = f"(SELECT GROUP_CONCAT(m.case_id) {mappings})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, {case_ids} FROM {Control._meta.db_table} c WHERE c.framework_id = %s",
            [framework_id, True, framework_id],
        )
        found = {control_id: _integers(ids) for control_id, ids in cursor.fetchall()}
    return {control_id: ids for control_id, ids in found.items() if ids}


def _tallies(
    framework_id: int,
    period: tuple[str, list[Any]],
    now: datetime,
    proven_through: int,
    controls: list[Control],
) -> dict[str, dict[int, _Tally]]:
    """Every figure of every level from two statements that join nothing, added up in Python.

    Joining each mapping row to its case (once per control, once more per case for the groups) was most
    of the time of the report; so the cases are read once, each as a profile (see _contribution), and the
    mappings once, as each control's case ids. A case is mapped to a control once, so a control's ids are
    its cases; a category's, a function's and the framework's cases are the union (each case once) of
    their controls' ids, a control counting under the category and function `control_groups` gives it, as
    its mapping rows record. A key's figures are then its cases' profiles counted and multiplied out, and
    its median is taken from its verified cases' elapsed times. Ids outside the period have no profile and
    no elapsed time, so they do not count.
    """
    packed, seconds = _case_facts(period, now, proven_through)
    verified = list(map(int, seconds[::2]))
    elapsed = list(map(float, seconds[1::2]))
    mapped = _mapped_cases(framework_id)
    top = max([*map(max, mapped.values()), max(packed, default=0) >> PROFILE_BITS])
    mask = (1 << PROFILE_BITS) - 1
    profile_of = _lookup(((value >> PROFILE_BITS, value & mask) for value in packed), len(packed), top)
    # The verified cases ranked by elapsed time, from 1 (so that a rank is never false): a key's median is
    # then read off the sorted ranks of its cases, all in C (filter, map, sorted).
    order = sorted(range(len(elapsed)), key=elapsed.__getitem__)
    ranked = [elapsed[position] for position in order]
    rank_of = _lookup(((verified[position], rank) for rank, position in enumerate(order, 1)), len(order), top)
    contributions: dict[int, tuple[int, ...]] = {}

    def tally(ids: Collection[int], ranks: Collection[int]) -> _Tally:
        """The figures of distinct case ids, and the median of the distinct ranks of the verified ones."""
        sums = [0] * (len(COUNTED) + len(STATES))
        for profile, n in Counter(map(profile_of, ids)).items():
            if profile is None:
                continue
            if profile not in contributions:
                contributions[profile] = _contribution(profile)
            for position, flag in enumerate(contributions[profile]):
                if flag:
                    sums[position] += n
        if not ranks:
            return _Tally(sums, None)
        ordered = sorted(ranks)
        # The mean of the middle one or two, added up as before (sum() of the sorted values).
        middle = (len(ordered) - 1) // 2
        values = [ranked[rank - 1] for rank in ordered[middle : middle + 1 + (len(ordered) + 1) % 2]]
        return _Tally(sums, sum(values) / len(values))

    # Each control's ranks once; a group's are the union of its controls' (a rank is one case), which is
    # half the work of ranking the group's cases again, since only the verified ones have a rank.
    ranks = {control_id: list(filter(None, map(rank_of, ids))) for control_id, ids in mapped.items()}
    found: dict[str, dict[int, _Tally]] = {
        "control": {control_id: tally(ids, ranks[control_id]) for control_id, ids in mapped.items()},
        "category": {},
        "function": {},
        "framework": {0: tally(set().union(*mapped.values()), set().union(*ranks.values()))},
    }
    members: dict[tuple[str, int], list[int]] = {}
    for control in controls:
        if control.pk in mapped:
            for level, key in zip(("category", "function"), control_groups(control), strict=True):
                if key is not None:
                    members.setdefault((level, key), []).append(control.pk)
    for (level, key), control_ids in members.items():
        found[level][key] = tally(
            set().union(*(mapped[control_id] for control_id in control_ids)),
            set().union(*(ranks[control_id] for control_id in control_ids)),
        )
    return found


def alignment_report(
    *, framework_key: str, since: date | None = None, until: date | None = None
) -> AlignmentReport:
    # Before the cases are read: a transition committed meanwhile lies past it and is not counted yet.
    proven_through = audit_proven_through()
    framework = Framework.objects.get(key=framework_key)
    now = timezone.now()
    # With their parents, for control_groups (a subcategory counts under its parent's parent too).
    controls = list(Control.objects.filter(framework=framework).select_related("parent").order_by("position"))
    tallies = _tallies(framework.pk, _period_sql(since, until), now, proven_through, controls)

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
        chain_proven_through=proven_through,
    )
