"""Benchmark of the audit chain (audit/): verifying a chain of 1,000,000 entries, and what appending an entry
adds to a case transition.

1. Builds a chain of --entries entries (default 1,000,000) in a FRESH database (the SQLite file is deleted
   and recreated, the PostgreSQL database dropped and created): case-transition entries sealed exactly as
   audit.services.audit_entry_append seals them (audit.canonical, audit.chain's seal_body, hash_body,
   entry_mac, head_mac; ~430-byte bodies), bulk-inserted (executemany on SQLite, COPY on PostgreSQL), and
   the head row set to the chain's end. The build is not what is measured.
2. Times full verifications with the real code, each in a fresh process (its peak memory, Django included,
   is its own max RSS): audit.services.audit_chain_walk() and audit_trail_verify() (the service of
   `manage.py verify_audit_trail`), alternately, --runs times each; then the command itself once.
3. Times real case transitions (confirm, dismiss, reopen, in turn) with the audit append and with
   audit_entry_append replaced by a no-op (in this process only), in alternating blocks, and the bare
   audit_entry_append inside a transaction.

    .venv/bin/python bench/audit_chain.py --database-url sqlite:///var/bench-audit.sqlite3
    .venv/bin/python bench/audit_chain.py --database-url postgres://postgres@127.0.0.1:5432/bench_audit
    .venv/bin/python bench/audit_chain.py --database-url ... --entries 100000 --profile   # where time goes

Targets (issue 7, 2-core machine): a full verification of 1,000,000 entries in <= 10 s; appending an entry
adds at most a few milliseconds to a transition (--append-target-ms, on the mean). Exits 1 if one is missed.
The database is dropped at the end unless --keep is given; the script refuses a database whose name does
not contain "bench" unless --force is given. See bench/README.md.
"""

# ruff: noqa: PLC0415  (Django is imported only after the environment is set up)
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from changelists import (
    ROOT,
    check_dedicated,
    configure_environment,
    database_label,
    percentile,
    safe_url,
    versions,
)

SEED = 20261130
BUILD_BATCH = 10_000
START = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
BENCH_ACTOR = "bench-audit-analyst"
PROJECT_PACKAGES = {
    "audit",
    "cases",
    "findings",
    "frameworks",
    "handoffs",
    "intake",
    "nhi_inventory",
    "portal",
}
# (transition, source state, target state, share): the mix of a real lifecycle log, most cases opened,
# confirmed, assigned, worked and closed; some dismissed, reopened or risk-accepted.
TRANSITIONS = (
    ("open", "", "identified", 20),
    ("confirm", "identified", "confirmed", 17),
    ("assign", "confirmed", "assigned", 16),
    ("start_action", "assigned", "in_progress", 14),
    ("verify", "in_progress", "verified", 12),
    ("close", "verified", "closed", 11),
    ("dismiss", "identified", "dismissed", 5),
    ("reopen", "closed", "identified", 3),
    ("accept_risk", "assigned", "risk_accepted", 2),
)
USERNAMES = (*(f"analyst-{n:02d}" for n in range(40)), "portal-automation", "approver-01", "owner-07")
REASON_WORDS = (
    "rotated",
    "the key",
    "confirmed with the owning team",
    "false positive: test fixture",
    "revoked in the provider console",
    "evidence attached",
    "ticket SEC-4411",
    "owner unreachable, escalated",
)


# --- The chain, sealed exactly as audit_entry_append seals it --------------------------------------------


def transition_entry_json(
    *,
    at: datetime,
    actor_id: int,
    username: str,
    case_id: int,
    source: str,
    target: str,
    transition_id: int,
    reason: str,
) -> str:
    """The canonical JSON audit_entry_append writes for a case transition (cases.services._log_transition)."""
    from audit.canonical import canonical_json, text_digest

    return canonical_json(
        {
            "at": at,
            "actor": {"id": actor_id, "username": username},
            "object": {"type": "cases.case", "id": str(case_id)},
            "before": {"state": source},
            "after": {"state": target},
            "details": {"transition": transition_id, "reason": text_digest(reason)},
        }
    )


def chain_rows(
    entries: int, *, start_seq: int, start_hash: str, key_id: str, key: bytes
) -> Iterator[tuple[Any, ...]]:
    """`entries` sealed case-transition entries after (start_seq, start_hash), in ENTRY_COLUMNS order."""
    from audit.chain import entry_mac, hash_body, seal_body

    rng = random.Random(SEED + start_seq)
    names = [t[0] for t in TRANSITIONS]
    states = {t[0]: (t[1], t[2]) for t in TRANSITIONS}
    weights = [t[3] for t in TRANSITIONS]
    # About eight entries per case, as a case's lifecycle has; the picks are drawn in blocks (cheaper).
    cases = max(1, (start_seq + entries) // 8)
    prev_hash = start_hash
    seq = start_seq
    while seq < start_seq + entries:
        block = min(BUILD_BATCH, start_seq + entries - seq)
        for name in rng.choices(names, weights=weights, k=block):
            seq += 1
            at = START + timedelta(seconds=seq * 7, microseconds=rng.randrange(1_000_000))
            actor_id = rng.randrange(len(USERNAMES))
            case_id = 1 + rng.randrange(cases)
            source, target = states[name]
            reason = "" if name == "open" else rng.choice(REASON_WORDS) + f" (#{seq})" * rng.randrange(2)
            event = f"case.{name}"
            entry_json = transition_entry_json(
                at=at,
                actor_id=actor_id + 2,
                username=USERNAMES[actor_id],
                case_id=case_id,
                source=source,
                target=target,
                transition_id=seq,
                reason=reason,
            )
            body = seal_body(
                seq=seq, prev_hash=prev_hash, case_id=case_id, event=event, entry_json=entry_json
            )
            digest = hash_body(body)
            yield (
                seq,
                at,
                event,
                case_id,
                "cases.case",
                str(case_id),
                actor_id + 2,
                body,
                prev_hash,
                digest,
                key_id,
                entry_mac(key, digest),
            )
            prev_hash = digest


def _copy_text(value: Any) -> str:
    """One field of PostgreSQL's COPY text format (our values hold no tab or newline: JSON escapes them)."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\")


def chain_build(entries: int) -> dict[str, Any]:
    """Append `entries` sealed entries after the current head, bulk-inserted, and move the head to the end.

    Runs in the caller's database connection (a test's transaction too). Returns the new head and the
    bodies' mean length.
    """
    from django.db import connection, transaction

    from audit.chain import GENESIS_HASH, head_mac
    from audit.keys import current_chain_key
    from audit.models import ENTRY_COLUMNS, AuditEntry, AuditHead

    key_id, key = current_chain_key()
    head = AuditHead.objects.filter(pk=1).first()
    start_seq, start_hash = (head.seq, head.last_hash) if head is not None else (0, GENESIS_HASH)
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(name) for name in ENTRY_COLUMNS)
    rows = chain_rows(entries, start_seq=start_seq, start_hash=start_hash, key_id=key_id, key=key)
    last_seq, last_hash, body_bytes = start_seq, start_hash, 0
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                lines = []
                for row in rows:
                    lines.append("\t".join(_copy_text(value) for value in row))
                    body_bytes += len(row[7])
                    last_seq, last_hash = row[0], row[9]
                    if len(lines) == BUILD_BATCH:
                        copy.write("\n".join(lines) + "\n")
                        lines = []
                if lines:
                    copy.write("\n".join(lines) + "\n")
        else:
            insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(ENTRY_COLUMNS))})"
            adapt = connection.ops.adapt_datetimefield_value
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append((row[0], adapt(row[1]), *row[2:]))
                body_bytes += len(row[7])
                last_seq, last_hash = row[0], row[9]
                if len(batch) == BUILD_BATCH:
                    cursor.executemany(insert, batch)
                    batch = []
            if batch:
                cursor.executemany(insert, batch)
        AuditHead.objects.update_or_create(
            pk=1,
            defaults={
                "seq": last_seq,
                "last_hash": last_hash,
                "key_id": key_id,
                "mac": head_mac(key, seq=last_seq, last_hash=last_hash),
            },
        )
    return {
        "first_seq": start_seq + 1,
        "last_seq": last_seq,
        "last_hash": last_hash,
        "mean_body_bytes": round(body_bytes / entries) if entries else 0,
    }


# --- Verification ------------------------------------------------------------------------------------------


def verify_once(method: str) -> dict[str, Any]:
    """One full verification with the real code: the walk alone, or the service of verify_audit_trail."""
    from audit.models import VerificationTrigger
    from audit.services import audit_chain_walk, audit_trail_verify

    started = time.perf_counter()
    if method == "walk":
        result = audit_chain_walk()
        ok, checked, problem = result.ok, result.entries_checked, result.problem
        message = problem.message if problem is not None else ""
    else:
        verification = audit_trail_verify(trigger=VerificationTrigger.COMMAND)
        ok, checked, message = verification.ok, verification.entries_checked, verification.message
    seconds = time.perf_counter() - started
    return {
        "method": method,
        "seconds": seconds,
        "entries_checked": checked,
        "entries_per_second": checked / seconds if seconds else 0.0,
        "ok": ok,
        "message": message,
    }


def profile_walk(top: int = 25) -> str:
    """cProfile of one walk, the functions with the most own time first."""
    from audit.services import audit_chain_walk

    profiler = cProfile.Profile()
    profiler.enable()
    audit_chain_walk()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- Appending ---------------------------------------------------------------------------------------------


@contextmanager
def audit_appends_skipped() -> Iterator[None]:
    """Replace audit_entry_append by a no-op wherever it was imported (this process only), then restore it.

    The no-op returns an unsaved entry (seq None), so callers that keep the entry's number run unchanged.
    """
    from audit import services as audit_services
    from audit.models import AuditEntry

    original = audit_services.audit_entry_append

    def skipped(**kwargs: Any) -> AuditEntry:
        return AuditEntry()

    patched = [
        module
        for name, module in list(sys.modules.items())
        if name.partition(".")[0] in PROJECT_PACKAGES
        and getattr(module, "audit_entry_append", None) is original
    ]
    for module in patched:
        module.audit_entry_append = skipped  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in patched:
            module.audit_entry_append = original  # type: ignore[attr-defined]


def _stats_ms(samples: list[float]) -> dict[str, float]:
    milliseconds = [sample * 1000 for sample in samples]
    return {
        "n": len(milliseconds),
        "mean_ms": statistics.fmean(milliseconds),
        "p50_ms": percentile(milliseconds, 0.5),
        "p95_ms": percentile(milliseconds, 0.95),
    }


def _bench_actor() -> Any:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from portal import roles

    user, created = get_user_model().objects.get_or_create(
        username=BENCH_ACTOR, defaults={"is_staff": True, "first_name": "Bench"}
    )
    if created:
        user.groups.add(Group.objects.get(name=roles.ANALYST))
    return get_user_model().objects.get(pk=user.pk)  # fresh: no cached permissions


def transition_cycle(actor: Any, case_ids: list[int]) -> Iterator[Callable[[], Any]]:
    """Endless real transitions over the cases, round-robin: confirm, dismiss, reopen (back to identified)."""
    from cases.models import DismissalReason
    from cases.services import case_confirm, case_dismiss, case_reopen

    steps: tuple[Callable[[int], Any], ...] = (
        lambda case_id: case_confirm(case_id=case_id, actor=actor, reason="confirmed with the owning team"),
        lambda case_id: case_dismiss(
            case_id=case_id,
            actor=actor,
            dismissal_reason=DismissalReason.FALSE_POSITIVE,
            reason="false positive: test fixture",
        ),
        lambda case_id: case_reopen(case_id=case_id, actor=actor, reason="the fixture holds a live key"),
    )
    turn = 0
    while True:
        step = steps[(turn // len(case_ids)) % len(steps)]
        case_id = case_ids[turn % len(case_ids)]
        yield partial(step, case_id)
        turn += 1


def measure_appends(
    *, transitions: int, appends: int, cases: int = 30, actor: Any | None = None
) -> dict[str, Any]:
    """Per-transition time with and without the audit append (alternating blocks), and the bare append.

    The actor (a compliance analyst; the benchmark's own by default) opens `cases` cases and moves them.
    """
    from django.db import transaction

    from audit.canonical import text_digest
    from audit.services import audit_entry_append
    from cases.models import CaseKind, Severity
    from cases.services import case_open

    actor = actor if actor is not None else _bench_actor()
    case_ids = [
        case_open(actor=actor, title=f"bench audit {n}", kind=CaseKind.ALERT_TRIAGE, severity=Severity.LOW).pk
        for n in range(cases)
    ]
    # A block is three rounds over the cases (each round is one step for every case), so each mode times as
    # many confirms, dismisses and reopens as the other.
    block = 3 * len(case_ids)
    cycle = transition_cycle(actor, case_ids)
    for _ in range(min(block, transitions)):  # warm-up (imports, caches, statements), untimed, both modes
        next(cycle)()
        with audit_appends_skipped():
            next(cycle)()
    samples: dict[str, list[float]] = {"with_audit": [], "without_audit": []}
    while len(samples["without_audit"]) < transitions:
        for mode in ("with_audit", "without_audit"):
            count = min(block, transitions - len(samples[mode]))
            with audit_appends_skipped() if mode == "without_audit" else nullcontext():
                for _ in range(count):
                    run = next(cycle)
                    started = time.perf_counter()
                    run()
                    samples[mode].append(time.perf_counter() - started)
    bare: list[float] = []
    case_id = case_ids[0]
    for n in range(appends):
        with transaction.atomic():
            started = time.perf_counter()
            audit_entry_append(
                actor=actor,
                event="bench.append",
                case_id=case_id,
                before={"state": "identified"},
                after={"state": "confirmed"},
                details={"transition": n, "reason": text_digest("confirmed with the owning team")},
            )
            bare.append(time.perf_counter() - started)
    with_audit, without_audit = _stats_ms(samples["with_audit"]), _stats_ms(samples["without_audit"])
    return {
        "transitions_per_mode": transitions,
        "with_audit": with_audit,
        "without_audit": without_audit,
        "added_mean_ms": with_audit["mean_ms"] - without_audit["mean_ms"],
        "added_p95_ms": with_audit["p95_ms"] - without_audit["p95_ms"],
        "bare_append": _stats_ms(bare),
    }


# --- Processes ---------------------------------------------------------------------------------------------


def _setup(database_url: str) -> None:
    configure_environment(argparse.Namespace(database_url=database_url))
    import django

    django.setup()


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def database_bytes() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_total_relation_size('audit_auditentry')")
            return int(cursor.fetchone()[0])
        cursor.execute("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
        return int(cursor.fetchone()[0])


def child_prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Migrate the fresh database, load the roles, build the chain (unless reused), analyze."""
    _setup(args.database_url)
    from django.core.management import call_command
    from django.db import connection

    from audit.models import AuditHead
    from portal.roles import roles_sync

    call_command("migrate", verbosity=0, interactive=False)
    roles_sync()
    head = AuditHead.objects.filter(pk=1).first()
    if args.reuse and head is not None and head.seq >= args.entries:
        return {"reused": True, "last_seq": head.seq, "versions": versions()}
    started = time.perf_counter()
    built = chain_build(args.entries)
    built["seconds"] = time.perf_counter() - started
    if connection.vendor == "postgresql":
        # What autovacuum soon does on a live server: statistics for the planner, hint bits set.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE audit_auditentry")
    built["table_bytes"] = database_bytes()
    built["versions"] = versions()
    return built


def child_verify(args: argparse.Namespace) -> dict[str, Any]:
    _setup(args.database_url)
    baseline = _max_rss_mb()
    result = verify_once(args.child_verify)
    result["max_rss_mb"] = _max_rss_mb()
    result["rss_before_mb"] = baseline
    return result


def child_profile(args: argparse.Namespace) -> dict[str, Any]:
    _setup(args.database_url)
    return {"profile": profile_walk()}


def child_append(args: argparse.Namespace) -> dict[str, Any]:
    _setup(args.database_url)
    return measure_appends(transitions=args.transitions, appends=args.appends)


def run_child(args: argparse.Namespace, *flags: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--database-url", args.database_url, *flags]
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def run_command(args: argparse.Namespace) -> dict[str, Any]:
    """`manage.py verify_audit_trail --json` as an operator runs it: wall time including start-up."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "verify_audit_trail", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, process.args, output)
    reported = json.loads(output.strip().splitlines()[-1])
    return {
        "method": "command",
        "seconds": seconds,
        "service_seconds": reported["seconds"],
        "entries_checked": reported["entries_checked"],
        "entries_per_second": reported["entries_checked"] / seconds,
        "ok": reported["ok"],
        "max_rss_mb": usage.ru_maxrss / 1024,
    }


# --- The fresh database ------------------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    # As dj-database-url reads it, from the children's working folder (ROOT).
    path = Path(urlsplit(url).path[1:])
    return path if path.is_absolute() else ROOT / path


def _postgres(url: str, statement: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    with psycopg.connect(
        host=parts.hostname or "localhost",
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier(parts.path.lstrip("/"))))


def database_drop(url: str) -> None:
    if database_label(url) == "PostgreSQL":
        _postgres(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
        return
    path = _sqlite_path(url)
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def database_create(url: str) -> None:
    if database_label(url) == "PostgreSQL":
        _postgres(url, "CREATE DATABASE {}")
        return
    _sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)


def database_exists(url: str) -> bool:
    if database_label(url) == "PostgreSQL":
        import psycopg

        parts = urlsplit(url)
        with psycopg.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 5432,
            user=parts.username,
            password=parts.password,
            dbname="postgres",
        ) as conn:
            name = parts.path.lstrip("/")
            return (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
            )
    return _sqlite_path(url).exists()


# --- Main --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries in the chain")
    parser.add_argument("--runs", type=int, default=3, help="timed verifications of each kind")
    parser.add_argument("--transitions", type=int, default=2_000, help="timed transitions per mode")
    parser.add_argument("--appends", type=int, default=2_000, help="timed bare appends")
    parser.add_argument("--target-seconds", type=float, default=10.0, help="full verification, max")
    parser.add_argument("--append-target-ms", type=float, default=5.0, help="added per transition, mean")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one walk")
    parser.add_argument("--no-command", action="store_true", help="skip timing manage.py verify_audit_trail")
    parser.add_argument("--reuse", action="store_true", help="keep a database whose chain is long enough")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--force", action="store_true", help="allow a database whose name lacks 'bench'")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--child-prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-verify", choices=("walk", "verify"), help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-append", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _child(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.child_prepare:
        return child_prepare(args)
    if args.child_verify:
        return child_verify(args)
    if args.child_profile:
        return child_profile(args)
    if args.child_append:
        return child_append(args)
    return None


def _print_verification(result: dict[str, Any]) -> None:
    print(
        f"  {result['method']:8} {result['seconds']:7.2f} s  {result['entries_per_second']:9.0f} entries/s  "
        f"peak {result['max_rss_mb']:6.1f} MB  {'intact' if result['ok'] else 'NOT INTACT'}",
        flush=True,
    )


def _print_appends(appended: dict[str, Any]) -> None:
    for mode in ("with_audit", "without_audit", "bare_append"):
        stats = appended[mode]
        print(
            f"  {mode:14} n={stats['n']:5}  mean {stats['mean_ms']:6.2f} ms  p50 {stats['p50_ms']:6.2f} ms  "
            f"p95 {stats['p95_ms']:6.2f} ms"
        )
    print(
        f"  the audit append adds {appended['added_mean_ms']:.2f} ms (mean), "
        f"{appended['added_p95_ms']:.2f} ms (p95) to a transition"
    )


def summarize(verifications: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per method: the median and best run (the machine is shared: the median is what targets are held to)."""
    summary = {}
    for method in dict.fromkeys(r["method"] for r in verifications):
        seconds = [r["seconds"] for r in verifications if r["method"] == method]
        peaks = [r["max_rss_mb"] for r in verifications if r["method"] == method]
        checked = max(r["entries_checked"] for r in verifications if r["method"] == method)
        summary[method] = {
            "runs": len(seconds),
            "median_seconds": statistics.median(seconds),
            "best_seconds": min(seconds),
            "median_entries_per_second": checked / statistics.median(seconds),
            "peak_rss_mb": max(peaks),
        }
    return summary


def find_misses(
    args: argparse.Namespace,
    verifications: list[dict[str, Any]],
    summary: dict[str, dict[str, float]],
    appended: dict[str, Any],
) -> list[str]:
    misses = [
        f"{method}: median {found['median_seconds']:.2f} s (> {args.target_seconds:g} s)"
        for method, found in summary.items()
        if method in ("walk", "verify") and found["median_seconds"] > args.target_seconds
    ]
    misses += [
        f"{r['method']} found the chain NOT intact: {r.get('message', '')}"
        for r in verifications
        if not r["ok"]
    ]
    if appended["added_mean_ms"] > args.append_target_ms:
        misses.append(
            f"the audit append adds {appended['added_mean_ms']:.2f} ms (> {args.append_target_ms:g})"
        )
    return misses


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """A fresh database (or the kept one, with --reuse) holding the chain."""
    reuse = args.reuse and database_exists(args.database_url)
    if not reuse:
        database_drop(args.database_url)
        database_create(args.database_url)
    prepared = run_child(args, "--child-prepare", "--entries", str(args.entries), *(["--reuse"] * reuse))
    print("  ".join(f"{name} {value}" for name, value in prepared["versions"].items()), flush=True)
    if prepared.get("reused"):
        print(f"reusing the chain (head at #{prepared['last_seq']})", flush=True)
    else:
        print(
            f"built #{prepared['first_seq']}..#{prepared['last_seq']} in {prepared['seconds']:.1f} s: bodies "
            f"{prepared['mean_body_bytes']} bytes on average, table {prepared['table_bytes'] / 1e6:.0f} MB",
            flush=True,
        )
    return prepared


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    child_result = _child(args)
    if child_result is not None:
        print(json.dumps(child_result, default=str))
        return 0
    check_dedicated(args.database_url, args.force)
    configure_environment(args)  # inherited by the children and by manage.py
    label = database_label(args.database_url)
    print(f"{label}: {safe_url(args.database_url)}  (entries={args.entries}, runs={args.runs})", flush=True)
    prepared = prepare(args)
    load_before = os.getloadavg()
    verifications: list[dict[str, Any]] = []
    for _ in range(args.runs):
        for method in ("walk", "verify"):  # alternately, so a burst of noise hits both alike
            verifications.append(run_child(args, "--child-verify", method))
            _print_verification(verifications[-1])
    if not args.no_command:
        verifications.append(run_command(args))
        _print_verification(verifications[-1])
    summary = summarize(verifications)
    for method, found in summary.items():
        print(
            f"  {method:8} median {found['median_seconds']:.2f} s, best {found['best_seconds']:.2f} s over "
            f"{found['runs']} run(s): {found['median_entries_per_second']:.0f} entries/s; "
            f"peak {found['peak_rss_mb']:.1f} MB"
        )
    if args.profile:
        print(run_child(args, "--child-profile")["profile"], flush=True)
    appended = run_child(
        args, "--child-append", "--transitions", str(args.transitions), "--appends", str(args.appends)
    )
    _print_appends(appended)
    load_after = os.getloadavg()
    print(
        f"load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{' '.join(f'{x:.2f}' for x in load_after)}; CPUs: {os.cpu_count()}"
    )
    misses = find_misses(args, verifications, summary, appended)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        results = {
            "database": label,
            "entries": args.entries,
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": load_after,
            "prepared": prepared,
            "verifications": verifications,
            "summary": summary,
            "appends": appended,
            "misses": misses,
        }
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if not args.keep:
        database_drop(args.database_url)
    for miss in misses:
        print(f"MISS: {miss}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
