"""Benchmark of the framework alignment report (cases.alignment.alignment_report) at 100,000 cases.

Seeds a dedicated database with bulk_create (benchmark data only: no history rows, no services): cases,
their lifecycle transitions (some without a reason), evidence on about half, four-eyes approvals for severe
closures, and 3 to 7 active control mappings per case across the three shipped frameworks; then sets the
per-case facts the services would have kept (has_evidence, traceable, closure_second_person_approved).
Then times alignment_report() for each framework (warm-up, then N runs) and exits 1 if any p50 misses
the target.

    .venv/bin/python bench/alignment_report.py --database-url sqlite:///var/bench-report.sqlite3
    .venv/bin/python bench/alignment_report.py --database-url postgres://postgres@127.0.0.1:5432/bench_report
    .venv/bin/python bench/alignment_report.py --database-url ... --reuse        # keep the seeded data

The database is WIPED (flush) before seeding unless --reuse finds it already seeded; the script refuses
a database whose name does not contain "bench" unless --force is given. See bench/README.md.
"""

# ruff: noqa: PLC0415  (Django is imported only after the environment is set up)
from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from changelists import (
    ROOT,
    analyze,
    bulk,
    check_dedicated,
    configure_environment,
    database_label,
    ensure_database_exists,
    percentile,
    raw_timestamps,
    safe_url,
    versions,
    weighted,
)

SEED = 20261129
USER_PREFIX = "bench-report-"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CASE_KINDS = (
    ("alert_triage", 40),
    ("secret_exposure", 25),
    ("nhi_misuse", 15),
    ("attack_path_review", 10),
    ("ai_output", 10),
)
SEVERITIES = ((1, 25), (2, 40), (3, 25), (4, 10))
STATES = (
    ("identified", 10),
    ("confirmed", 6),
    ("assigned", 6),
    ("in_progress", 10),
    ("verified", 5),
    ("closed", 45),
    ("dismissed", 15),
    ("risk_accepted", 3),
)
PATH = ("identified", "confirmed", "assigned", "in_progress", "verified", "closed")
TRANSITION_NAMES = {
    "confirmed": "confirm",
    "assigned": "assign",
    "in_progress": "start_action",
    "verified": "verify",
    "closed": "close",
}
FRAMEWORK_SHARE = (("nist-csf-2.0", 55), ("owasp-nhi-top10-2025", 30), ("nist-ai-rmf-1.0", 15))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL"), help="sqlite:///... or postgres://..."
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10, help="timed reports per framework (after warm-up)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed reports per framework first")
    parser.add_argument("--target-ms", type=float, default=1000.0, help="p50 target per framework")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the data if the database is already seeded"
    )
    parser.add_argument("--force", action="store_true", help="allow a database whose name lacks 'bench'")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--explain", action="store_true", help="print each query with its time and plan")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    return args


# --- Seeding -----------------------------------------------------------------------------------------------


def seed(n_cases: int) -> dict[str, int]:  # noqa: PLR0912, PLR0915
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command

    from cases.models import (
        Approval,
        Case,
        CaseControlMapping,
        CaseTransition,
        Evidence,
        MappingSource,
    )
    from frameworks.models import Control, ControlKind

    rng = random.Random(SEED)
    call_command("load_catalogs", stdout=io.StringIO())
    User = get_user_model()
    unusable = make_password(None)
    User.objects.bulk_create(
        User(username=f"{USER_PREFIX}{i:02d}", is_staff=True, password=unusable, date_joined=NOW)
        for i in range(20)
    )
    people = list(User.objects.filter(username__startswith=USER_PREFIX).values_list("id", flat=True))

    # Leaf controls per framework, with uneven popularity; about a third are never mapped (gaps).
    leaves: dict[str, list[tuple[int, int]]] = {}
    for key, _ in FRAMEWORK_SHARE:
        ids = list(
            Control.objects.filter(
                framework__key=key, kind__in=(ControlKind.SUBCATEGORY, ControlKind.RISK)
            ).values_list("id", flat=True)
        )
        rng.shuffle(ids)
        used = ids[: max(1, (len(ids) * 2) // 3)]
        leaves[key] = [(control_id, 1 + (rank % 7) ** 2) for rank, control_id in enumerate(used)]

    t0 = time.perf_counter()
    kinds = weighted(rng, CASE_KINDS, n_cases)
    severities = weighted(rng, SEVERITIES, n_cases)
    states = weighted(rng, STATES, n_cases)
    cases = []
    for i in range(n_cases):
        created = NOW - timedelta(days=min(rng.expovariate(1 / 200), 1000), seconds=rng.randrange(86400))
        state = states[i]
        verified = created + timedelta(hours=rng.lognormvariate(3.5, 1.0))
        cases.append(
            Case(
                title=f"Bench case {i}",
                kind=kinds[i],
                severity=severities[i],
                priority=max(1, 5 - severities[i]),
                origin="scanner",
                state=state,
                opened_by_id=rng.choice(people),
                due_at=created + timedelta(days=(30, 14, 7, 2)[severities[i] - 1])
                if rng.random() < 0.7
                else None,
                created_at=created,
                updated_at=created,
                verified_at=verified if state in ("verified", "closed") else None,
                closed_at=verified + timedelta(hours=rng.uniform(1, 48)) if state == "closed" else None,
            )
        )
    with raw_timestamps(Case):
        bulk(Case, cases)
    rows = list(Case.objects.order_by("id").values_list("id", "state", "severity", "created_at"))
    print(f"  {len(rows):>8} cases           {time.perf_counter() - t0:6.1f} s", flush=True)

    t0 = time.perf_counter()
    mappings, transitions, evidence, approvals = [], [], [], []
    for case_id, state, severity, created in rows:
        actor = rng.choice(people)
        # 3-7 mappings, spread over the frameworks.
        chosen: set[int] = set()
        for _ in range(rng.randint(3, 7)):
            key = weighted(rng, FRAMEWORK_SHARE, 1)[0]
            pool = leaves[key]
            chosen.add(rng.choices([c for c, _ in pool], weights=[w for _, w in pool])[0])
        for control_id in chosen:
            mappings.append(
                CaseControlMapping(
                    case_id=case_id,
                    control_id=control_id,
                    source=MappingSource.RULE,
                    rationale="bench",
                    is_active=rng.random() < 0.97,
                    changed_at=created,
                )
            )
        # Transitions along the lifecycle; about 8 % of cases have one without a reason.
        careless = rng.random() < 0.08
        at = created
        transitions.append(
            CaseTransition(
                case_id=case_id,
                name="open",
                source_state="",
                target_state="identified",
                actor_id=actor,
                reason="",
                at=at,
            )
        )
        if state in ("dismissed", "risk_accepted"):
            steps = [state]
        elif state == "identified":
            steps = []
        else:
            steps = list(PATH[1 : PATH.index(state) + 1])
        source = "identified"
        for n, target in enumerate(steps):
            at += timedelta(hours=rng.uniform(0.5, 24))
            transitions.append(
                CaseTransition(
                    case_id=case_id,
                    name=TRANSITION_NAMES.get(target, "dismiss" if target == "dismissed" else "accept_risk"),
                    source_state=source,
                    target_state=target,
                    actor_id=actor,
                    reason="" if careless and n == 0 else f"step {n}",
                    at=at,
                )
            )
            source = target
        if rng.random() < 0.5 or state in ("verified", "closed"):
            evidence.append(
                Evidence(
                    case_id=case_id,
                    kind="note",
                    title="Log",
                    note="bench",
                    sha256="0" * 64,
                    captured_by_id=actor,
                    captured_at=created + timedelta(hours=1),
                )
            )
        if severity >= 3 and state == "closed":
            decider = rng.choice([p for p in people if p != actor])
            approvals.append(
                Approval(
                    case_id=case_id,
                    kind="closure",
                    status="approved" if rng.random() < 0.97 else "superseded",
                    reason="fixed",
                    requested_by_id=actor,
                    requested_at=at,
                    decided_by_id=decider,
                    decided_at=at,
                )
            )
    bulk(CaseControlMapping, mappings)  # bulk_create fills each row's framework, category and function
    bulk(CaseTransition, transitions)
    prove_transitions_in_chain()
    bulk(Evidence, evidence)
    bulk(Approval, approvals)
    # The per-case facts the services keep (Case.has_evidence, traceable, closure_second_person_approved).
    facts = {
        "has_evidence": sorted({item.case_id for item in evidence}),
        "traceable": sorted({t.case_id for t in transitions if t.name != "open" and not t.reason}),
        "closure_second_person_approved": sorted(
            {a.case_id for a in approvals if a.status == "approved" and a.decided_by_id != a.requested_by_id}
        ),
    }
    for name, ids in facts.items():
        value = name != "traceable"  # traceable is the default; the careless cases lose it
        for start in range(0, len(ids), 5000):
            Case.objects.filter(pk__in=ids[start : start + 5000]).update(**{name: value})
    print(
        f"  {len(mappings):>8} mappings, {len(transitions)} transitions, {len(evidence)} evidence, "
        f"{len(approvals)} approvals  {time.perf_counter() - t0:6.1f} s",
        flush=True,
    )
    return {
        "cases": len(rows),
        "mappings": len(mappings),
        "transitions": len(transitions),
        "evidence": len(evidence),
        "approvals": len(approvals),
    }


def prove_transitions_in_chain() -> None:
    """Give every transition its audit chain entry and each case its chain_seq, as the services would, and
    record an intact verification: the report then counts traceable cases as in production (the chain's
    bodies are synthetic; the report reads positions, not bodies)."""
    from audit_chain import chain_build
    from django.db.models import F, Max, OuterRef, Subquery

    from audit.models import VerificationTrigger
    from audit.services import audit_trail_verify
    from cases.models import Case, CaseTransition

    first_id = CaseTransition.objects.order_by("pk").values_list("pk", flat=True).first() or 1
    chain_build(CaseTransition.objects.count())
    CaseTransition.objects.update(audit_seq=F("pk") - first_id + 1)
    latest = CaseTransition.objects.filter(case=OuterRef("pk")).values("case").annotate(m=Max("audit_seq"))
    Case.objects.update(chain_seq=Subquery(latest.values("m")))
    audit_trail_verify(trigger=VerificationTrigger.COMMAND)


def is_seeded(n_cases: int) -> bool:
    from cases.models import Case, CaseControlMapping

    return Case.objects.count() == n_cases and CaseControlMapping.objects.count() >= 3 * n_cases


# --- Timing ------------------------------------------------------------------------------------------------


def time_reports(args: argparse.Namespace, label: str) -> list[dict[str, Any]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cases.alignment import alignment_report
    from cases.models import CaseControlMapping
    from frameworks.models import Framework

    results = []
    for key in Framework.objects.order_by("key").values_list("key", flat=True):
        for _ in range(args.warmup):
            alignment_report(framework_key=key)
        samples, cpu = [], []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            report = alignment_report(framework_key=key)
            samples.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        with CaptureQueriesContext(connection) as captured:
            alignment_report(framework_key=key)
        p50 = percentile(samples, 0.5)
        results.append(
            {
                "database": label,
                "framework": key,
                "mappings": CaseControlMapping.objects.filter(
                    control__framework__key=key, is_active=True
                ).count(),
                "cases": report.summary.figures.mapped_cases,
                "gaps": len(report.gaps),
                "queries": len(captured.captured_queries),
                "sql_ms": round(sum(float(q["time"]) for q in captured.captured_queries) * 1000, 1),
                "cpu_p50_ms": round(statistics.median(cpu), 1),
                "p50_ms": round(p50, 1),
                "max_ms": round(max(samples), 1),
                "min_ms": round(min(samples), 1),
                "runs": len(samples),
                "ok": p50 <= args.target_ms and max(samples) <= args.target_ms,
            }
        )
        if args.explain:
            explain(key, captured.captured_queries)
    return results


def explain(key: str, queries: list[dict[str, str]]) -> None:
    from django.db import connection

    print(f"\n=== {key}: {len(queries)} queries")
    for query in queries:
        sql = query["sql"]
        print(f"--- {float(query['time']) * 1000:7.1f} ms  {sql[:300]}{'…' if len(sql) > 300 else ''}")
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("EXPLAIN ANALYZE " + sql)
                plan = [row[0] for row in cursor.fetchall()]
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql)
                plan = [row[-1] for row in cursor.fetchall()]
        for line in plan:
            print(f"      {line}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_dedicated(args.database_url, args.force)
    configure_environment(args)
    ensure_database_exists(args.database_url)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    assert not settings.DEBUG, "the benchmark must run with DEBUG off"
    label = database_label(args.database_url)
    print(f"{label}: {safe_url(args.database_url)}  (cases={args.cases}, runs={args.runs})", flush=True)
    print("  ".join(f"{name} {value}" for name, value in versions().items()), flush=True)

    t0 = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    seeded: dict[str, float] = {}
    if args.reuse and is_seeded(args.cases):
        print("reusing the seeded data", flush=True)
    else:
        call_command("flush", interactive=False, verbosity=0)
        print("seeding ...", flush=True)
        seed_start = time.perf_counter()
        seeded.update(seed(args.cases))
        analyze()
        seeded["seconds"] = round(time.perf_counter() - seed_start, 1)
        print(f"seeded in {seeded['seconds']} s", flush=True)
    print(f"ready in {time.perf_counter() - t0:.1f} s\n", flush=True)

    load_before = os.getloadavg()
    results = time_reports(args, label)
    load_after = os.getloadavg()
    print(
        f"load average (1/5/15 min) before timing: {load_before[0]:.2f} {load_before[1]:.2f} "
        f"{load_before[2]:.2f}; after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}\n"
    )
    header = (
        f"{'database':<11}{'framework':<22}{'mappings':>9}{'cases':>7}{'gaps':>6}{'queries':>8}"
        f"{'sql ms':>8}{'cpu ms':>8}{'p50 ms':>8}{'min':>7}{'max':>7}  target"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['database']:<11}{r['framework']:<22}{r['mappings']:>9}{r['cases']:>7}{r['gaps']:>6}"
            f"{r['queries']:>8}{r['sql_ms']:>8.1f}{r['cpu_p50_ms']:>8.1f}{r['p50_ms']:>8.1f}"
            f"{r['min_ms']:>7.1f}{r['max_ms']:>7.1f}  {'ok' if r['ok'] else f'MISS (>{args.target_ms:g})'}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "versions": versions(),
                    "seeded": seeded or "reused",
                    "load_before": load_before,
                    "load_after": load_after,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "results": results,
                },
                indent=2,
            )
        )
    missed = [r for r in results if not r["ok"]]
    if missed:
        print(f"\n{len(missed)} framework(s) miss the target of {args.target_ms:g} ms (p50 and max).")
        return 1
    print(f"\nEvery framework meets the target of {args.target_ms:g} ms (p50 and max).")
    return 0


if __name__ == "__main__":
    assert ROOT.is_dir()
    sys.exit(main())
