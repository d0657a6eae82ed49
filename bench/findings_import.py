"""Benchmark of importing a 100,000-finding gitleaks report (findings.services.findings_import).

Generates a gitleaks v8 JSON report with repeated secrets (deterministic), then, on a dedicated database
that it empties of findings first: imports it (first import) and imports it again (identical re-import).
Each import runs in a fresh child process, so its peak memory (Django included) is its own: the import
forks a sealing process of its own, so the peak is the larger of the writer's max RSS and the sampled
summed PSS of both processes (each shared page counted once).
Reports findings per second and peak memory for both, and exits 1 if a target is missed.

    .venv/bin/python bench/findings_import.py --database-url sqlite:///var/bench-findings.sqlite3
    .venv/bin/python bench/findings_import.py --database-url postgres://postgres@127.0.0.1:5432/bench_findings

Targets (secrets-findings issue, 2-core machine): first import >= 10,000 findings/s, identical re-import
>= 25,000 findings/s, peak memory <= 150 MB, on SQLite and PostgreSQL. See bench/README.md.
"""

# ruff: noqa: PLC0415  (Django is imported only after the environment is set up)
from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import string
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from changelists import (
    ROOT,
    check_dedicated,
    configure_environment,
    database_label,
    ensure_database_exists,
    safe_url,
    versions,
)

SEED = 20261129
RULES = (
    ("aws-access-token", "AKIA", string.ascii_uppercase + string.digits, 16),
    ("github-pat", "ghp_", string.ascii_letters + string.digits, 36),
    ("slack-bot-token", "xoxb-", string.digits + "-", 40),
    ("generic-api-key", "", string.ascii_letters + string.digits, 40),
    ("stripe-access-token", "sk_live_", string.ascii_letters + string.digits, 24),
)
REPOSITORIES = [f"github.com/acme/service-{n:03d}" for n in range(200)]


def generate(path: Path, findings: int, distinct: int) -> None:
    """Write the report item by item (never whole in memory): `findings` items over `distinct` secrets."""
    rng = random.Random(SEED)
    secrets = []
    for _ in range(distinct):
        rule, prefix, alphabet, length = rng.choice(RULES)
        secrets.append((rule, prefix + "".join(rng.choice(alphabet) for _ in range(length))))
    with path.open("w") as out:
        out.write("[\n")
        for n in range(findings):
            # The first `distinct` items name every secret once; the rest repeat them, skewed to a few.
            rule, secret = secrets[n] if n < distinct else secrets[int(rng.paretovariate(1.2) * 7) % distinct]
            repository = REPOSITORIES[n % len(REPOSITORIES)]
            line = 1 + n % 400
            item = {
                "Description": rule.replace("-", " ").title(),
                "StartLine": line,
                "EndLine": line,
                "StartColumn": 12,
                "EndColumn": 12 + len(secret),
                "Match": f"TOKEN={secret}",
                "Secret": secret,
                "File": f"src/module_{n % 997}/config_{n % 13}.env",
                "SymlinkFile": "",
                "Commit": f"{n * 2654435761 % (1 << 160):040x}",
                "Entropy": 4.7,
                "Author": "Bench Author",
                "Email": "bench@example.com",
                "Date": "2026-01-02T03:04:05Z",
                "Message": "add configuration",
                "Tags": [],
                "RuleID": rule,
                "Fingerprint": f"{repository}:{n}",
            }
            out.write(("," if n else "") + json.dumps(item) + "\n")
        out.write("]\n")


def _pss_kb(pid: int | str) -> int:
    """Proportional set size of a process: its private pages plus its share of the pages it shares."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:  # ended meanwhile
        pass
    return 0


def _child_pids(pid: int) -> list[str]:
    pids = []
    with contextlib.suppress(OSError):  # ended meanwhile
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread ended meanwhile
                pids += (task / "children").read_text().split()
    return pids


def run_sampled(command: list[str]) -> tuple[str, float]:
    """Run the import process; return its output and the peak of its PSS summed with its children's
    (the import's sealing process), sampled every 20 ms: their true combined footprint, where adding
    max RSS would count the pages they share twice. Sampled from here, outside: a sampling thread inside
    would make the import's process multi-threaded, and the import forks only single-threaded ones."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as process:
        peak_kb = 0
        while process.poll() is None:
            children = _child_pids(process.pid)
            total = _pss_kb(process.pid) + sum(_pss_kb(pid) for pid in children)
            # A sample across a fork (the writer read before it, the new child after) counts the pages
            # they then share twice; such a sample is dropped (the set of children changed under it).
            if _child_pids(process.pid) == children:
                peak_kb = max(peak_kb, total)
            time.sleep(0.02)
        output = process.stdout.read() if process.stdout else ""
        if process.returncode:
            raise subprocess.CalledProcessError(process.returncode, command, output)
    return output, peak_kb / 1024


def child(database_url: str, report: Path, source: str) -> dict[str, Any]:
    """One import in this (fresh) process: its wall time, summary and the process's peak memory."""
    args = argparse.Namespace(database_url=database_url)
    configure_environment(args)
    import django

    django.setup()
    from findings.services import findings_import
    from portal.roles import automation_user

    actor = automation_user()
    with report.open("rb") as stream:
        started = time.perf_counter()
        run = findings_import(
            actor=actor, report_format="gitleaks", source=source, stream=stream, file_name=report.name
        )
        elapsed = time.perf_counter() - started
    # The import parses and seals in a forked child of its own (findings.ingest.SealingPipeline), ended
    # and waited for by now: its max RSS is RUSAGE_CHILDREN's. The two max RSS added up count the pages
    # the child shares with this process (Django, copy-on-write) twice; the target is checked against
    # the peak of their summed PSS, sampled by the benchmark's parent process, which counts each page once.
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "seconds": elapsed,
        "summary": run.summary,
        "parent_max_rss_mb": parent_mb,
        "sealing_child_max_rss_mb": child_mb,
        "versions": versions(),  # here: the parent process never sets Django up
    }


def prepare(database_url: str) -> None:
    """Migrate, then empty the (dedicated) database and load the roles and default promotion rules."""
    configure_environment(argparse.Namespace(database_url=database_url))
    import django
    from django.core.management import call_command

    django.setup()
    from findings.promotion import promotion_rules_ensure_defaults
    from portal.roles import roles_sync

    call_command("migrate", verbosity=0, interactive=False)
    call_command("flush", verbosity=0, interactive=False)
    roles_sync()
    promotion_rules_ensure_defaults()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=40_000, help="distinct secrets in the report")
    parser.add_argument("--report", type=Path, default=ROOT / "var" / "bench-gitleaks-100k.json")
    parser.add_argument("--force", action="store_true", help="allow a database whose name lacks 'bench'")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--first-target", type=float, default=10_000.0, help="findings/s, first import")
    parser.add_argument("--again-target", type=float, default=25_000.0, help="findings/s, re-import")
    parser.add_argument("--memory-target", type=float, default=150.0, help="peak MB")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.database_url, args.report, "bench/gitleaks")))
        return 0
    if args.prepare:
        prepare(args.database_url)
        return 0
    check_dedicated(args.database_url, args.force)
    ensure_database_exists(args.database_url)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generate(args.report, args.findings, args.distinct)
    print(
        f"report: {args.report} ({args.report.stat().st_size / 1e6:.1f} MB, {args.findings} findings, "
        f"{args.distinct} distinct secrets) in {time.perf_counter() - started:.1f} s"
    )
    # Each step in its own process: the imports' peak memory must not include the other steps'.
    subprocess.run(
        [sys.executable, __file__, "--prepare", "--database-url", args.database_url], check=True, cwd=ROOT
    )
    print(f"{database_label(args.database_url)}: {safe_url(args.database_url)}")
    results = {}
    for name in ("first", "again"):
        output, peak_pss_mb = run_sampled(
            [
                sys.executable,
                __file__,
                "--child",
                "--database-url",
                args.database_url,
                "--report",
                str(args.report),
            ]
        )
        result = json.loads(output.strip().splitlines()[-1])
        result["peak_pss_mb"] = peak_pss_mb
        result["peak_rss_mb"] = max(result["parent_max_rss_mb"], peak_pss_mb)
        result["findings_per_second"] = args.findings / result["seconds"]
        results[name] = result
        print(
            f"  {name:5}  {result['seconds']:7.2f} s  {result['findings_per_second']:9.0f} findings/s  "
            f"peak {result['peak_rss_mb']:6.1f} MB (summed PSS {result['peak_pss_mb']:.1f}; max RSS writer "
            f"{result['parent_max_rss_mb']:.1f}, sealing child {result['sealing_child_max_rss_mb']:.1f})"
            f"  {json.dumps(result['summary'])}"
        )
    misses = []
    if results["first"]["findings_per_second"] < args.first_target:
        misses.append(f"first import below {args.first_target:.0f} findings/s")
    if results["again"]["findings_per_second"] < args.again_target:
        misses.append(f"re-import below {args.again_target:.0f} findings/s")
    misses += [
        f"{name} import peaked above {args.memory_target:.0f} MB"
        for name, result in results.items()
        if result["peak_rss_mb"] > args.memory_target
    ]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "database": database_label(args.database_url),
                    "findings": args.findings,
                    "distinct": args.distinct,
                    "versions": results["first"]["versions"],
                    "results": results,
                    "misses": misses,
                },
                indent=2,
            )
        )
    for miss in misses:
        print(f"MISS: {miss}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
