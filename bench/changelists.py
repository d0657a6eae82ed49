"""Benchmark of the admin changelists (cases and non-human identities) on a large, realistic data set.

Seeds a dedicated database with bulk_create (benchmark data only: no history rows, no services), then
times the case and NHI changelists through django.test.Client, logged in as a superuser and as a
compliance analyst. Prints p50/p95 per page and exits 1 if any p50 misses the target.

    .venv/bin/python bench/changelists.py --database-url sqlite:///var/bench.sqlite3
    .venv/bin/python bench/changelists.py --database-url postgres://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/changelists.py --database-url ... --reuse          # keep the seeded data

The database is WIPED (flush) before seeding unless --reuse finds it already seeded; the script refuses
a database whose name does not contain "bench" unless --force is given. See bench/README.md.
"""

# ruff: noqa: PLC0415  (Django is imported only after the environment is set up)
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent

BENCH_USERS_PREFIX = "bench-"
SUPERUSER = "bench-admin"
ANALYST_USER = "bench-analyst"
SEED = 20240601


# --- Command line and environment (before Django is imported) ---------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL"), help="sqlite:///... or postgres://..."
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--nhis", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=30, help="timed requests per page (after warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--target-ms", type=float, default=150.0, help="p50 target per page")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the data if the database is already seeded"
    )
    parser.add_argument("--force", action="store_true", help="allow a database whose name lacks 'bench'")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="after timing, print each page's SQL with its time and query plan",
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    return args


def configure_environment(args: argparse.Namespace) -> None:
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("PORTAL_ENV", "development")
    hosts = [h for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    os.environ["ALLOWED_HOSTS"] = ",".join(dict.fromkeys([*hosts, "testserver", "localhost", "127.0.0.1"]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def database_label(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return "SQLite"
    if parts.scheme.startswith("postgres"):
        return "PostgreSQL"
    return parts.scheme


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def check_dedicated(url: str, force: bool) -> None:
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    if "bench" not in name.lower() and not force:
        sys.exit(
            f"Refusing to use {url!r}: the benchmark wipes its database; "
            "use a database name containing 'bench', or --force."
        )


def ensure_database_exists(url: str) -> None:
    """Create the SQLite file's folder, or the PostgreSQL database, when missing."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        # As dj-database-url reads it: sqlite:///relative/to/cwd.sqlite3, sqlite:////absolute/path.sqlite3
        Path(parts.path[1:]).parent.mkdir(parents=True, exist_ok=True)
        return
    if parts.scheme.startswith("postgres"):
        import psycopg
        from psycopg import sql

        dbname = parts.path.lstrip("/")
        with psycopg.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 5432,
            user=parts.username,
            password=parts.password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
                print(f"created PostgreSQL database {dbname!r}")


# --- Seeding -----------------------------------------------------------------------------------------------

TEAMS = (
    "Payments Platform",
    "Identity & Access",
    "Cloud Infrastructure",
    "Data Platform",
    "Customer Portal",
    "Mobile Apps",
    "Billing",
    "Search",
    "Core Banking",
    "Risk Engine",
    "Developer Experience",
    "SRE",
    "Security Engineering",
    "Analytics",
    "Messaging",
    "Partner Integrations",
    "Internal Tools",
    "ML Platform",
    "Fraud Detection",
    "Checkout",
    "Logistics",
    "HR Systems",
    "Finance Systems",
    "Marketing Tech",
)
SYSTEMS = (
    "payments",
    "billing",
    "checkout",
    "ledger",
    "search",
    "catalog",
    "orders",
    "inventory",
    "shipping",
    "notifications",
    "auth",
    "sso",
    "gateway",
    "reporting",
    "warehouse",
    "etl",
    "crm",
    "support",
    "fraud",
    "risk",
    "kyc",
    "onboarding",
    "pricing",
    "recommendations",
    "media",
    "cdn",
    "dns",
    "vpn",
    "backup",
    "monitoring",
    "logging",
    "ci",
    "deploy",
    "registry",
    "secrets",
    "vault",
    "mail",
    "chat",
    "hr",
    "payroll",
    "finance",
    "treasury",
    "loyalty",
    "partners",
    "mobile",
    "web",
    "admin",
    "scheduler",
    "queue",
    "cache",
)
PROVIDERS = (
    ("AWS", 26),
    ("Kubernetes", 16),
    ("GitHub", 14),
    ("Azure", 10),
    ("GCP", 8),
    ("Okta", 6),
    ("Salesforce", 4),
    ("Slack", 4),
    ("Datadog", 3),
    ("Stripe", 3),
    ("HashiCorp Vault", 3),
    ("Snowflake", 3),
)
NHI_KINDS = (
    ("service_account", 30),
    ("api_key", 22),
    ("token", 12),
    ("workload_identity", 12),
    ("oauth_app", 8),
    ("bot", 6),
    ("certificate", 6),
    ("other", 4),
)
ENVIRONMENTS = (("production", 45), ("staging", 20), ("development", 25), ("test", 10))
CASE_KINDS = (
    ("alert_triage", 40),
    ("secret_exposure", 25),
    ("nhi_misuse", 15),
    ("attack_path_review", 10),
    ("ai_output", 10),
)
SEVERITIES = ((1, 25), (2, 40), (3, 25), (4, 10))
ORIGINS = (("scanner", 55), ("manual", 25), ("api", 15), ("assistant", 5))
# Old cases are mostly settled; recent ones mostly open (the case list shows the newest first).
STATES_RECENT = (
    ("identified", 22),
    ("confirmed", 14),
    ("assigned", 12),
    ("in_progress", 14),
    ("verified", 6),
    ("closed", 20),
    ("dismissed", 10),
    ("risk_accepted", 2),
)
STATES_OLD = (
    ("identified", 1),
    ("confirmed", 1),
    ("assigned", 1),
    ("in_progress", 3),
    ("verified", 1),
    ("closed", 70),
    ("dismissed", 19),
    ("risk_accepted", 4),
)
ALERTS = (
    "Anomalous API calls from",
    "Impossible travel for",
    "Privilege escalation by",
    "Mass download by",
    "Off-hours console login by",
    "New region used by",
    "Failed authentication burst for",
)
EXPOSURES = (
    "AWS access key",
    "GitHub token",
    "Slack webhook",
    "Stripe secret key",
    "database password",
    "private key",
    "OAuth client secret",
    "Datadog API key",
)
LOCATIONS = (
    "public repository",
    "CI log",
    "Jira ticket",
    "Confluence page",
    "container image",
    "Slack channel",
)


def weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]], k: int) -> list[Any]:
    values = [value for value, _ in pairs]
    weights = [weight for _, weight in pairs]
    return rng.choices(values, weights=weights, k=k)


@contextmanager
def raw_timestamps(*models: Any) -> Iterator[None]:
    """Let bulk_create store the timestamps we give instead of now() (auto_now / auto_now_add)."""
    saved = []
    for model in models:
        for field in model._meta.concrete_fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                saved.append((field, field.auto_now, field.auto_now_add))
                field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


def bulk(model: Any, rows: list[Any], batch_size: int = 5000) -> None:
    from django.db import transaction

    for start in range(0, len(rows), batch_size):
        with transaction.atomic():
            model.objects.bulk_create(rows[start : start + batch_size], batch_size=batch_size)


def seed(n_cases: int, n_nhis: int) -> dict[str, int]:  # noqa: PLR0915
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group

    from cases.models import Case, CaseIdentity
    from nhi_inventory.models import NonHumanIdentity, Team, TeamMembership
    from portal import roles

    User = get_user_model()
    rng = random.Random(SEED)
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    unusable = make_password(None)

    # Users: a superuser, an analyst, and 60 team members.
    people = [
        User(
            username=f"bench-user-{i:02d}",
            first_name=f"User{i:02d}",
            last_name="Bench",
            email=f"bench-user-{i:02d}@example.test",
            is_staff=True,
            password=unusable,
            date_joined=now,
        )
        for i in range(60)
    ]
    people.append(
        User(username=SUPERUSER, is_staff=True, is_superuser=True, password=unusable, date_joined=now)
    )
    people.append(User(username=ANALYST_USER, is_staff=True, password=unusable, date_joined=now))
    User.objects.bulk_create(people)
    members = list(User.objects.filter(username__startswith="bench-user-").order_by("id"))
    analyst = User.objects.get(username=ANALYST_USER)
    analyst.groups.add(Group.objects.get(name=roles.ANALYST))

    with raw_timestamps(Team, TeamMembership, NonHumanIdentity, Case):
        teams = [
            Team(
                name=name,
                slug=name.lower().replace(" & ", "-").replace(" ", "-"),
                lead=members[i % len(members)],
                contact_email=f"team{i}@example.test",
                created_at=now - timedelta(days=900),
            )
            for i, name in enumerate(TEAMS)
        ]
        Team.objects.bulk_create(teams)
        teams = list(Team.objects.order_by("id"))
        # Team sizes are uneven: a few big teams own most things (Zipf-like weights).
        team_weights = [1 / (rank + 1) for rank in range(len(teams))]
        memberships = []
        for i, user in enumerate(members):
            for team in {teams[i % len(teams)], rng.choices(teams, weights=team_weights)[0]}:
                memberships.append(TeamMembership(team=team, user=user, joined_at=now - timedelta(days=400)))
        TeamMembership.objects.bulk_create(memberships)

        # Non-human identities.
        t0 = time.perf_counter()
        kinds = weighted(rng, NHI_KINDS, n_nhis)
        envs = weighted(rng, ENVIRONMENTS, n_nhis)
        providers = weighted(rng, PROVIDERS, n_nhis)
        nhis = []
        for i in range(n_nhis):
            kind, env, provider = kinds[i], envs[i], providers[i]
            system = rng.choice(SYSTEMS)
            short_env = env[:4]
            name = {
                "service_account": f"svc-{system}-{short_env}-{i}",
                "api_key": f"{provider.lower().split()[0]}-api-key-{system}-{i}",
                "token": f"{provider} PAT {system} {i}",
                "workload_identity": f"wi-{system}-{short_env}-{i}",
                "oauth_app": f"{provider} OAuth app {system} {i}",
                "bot": f"{system}-bot-{i}",
                "certificate": f"{system}.{short_env}.example.com TLS {i}",
                "other": f"{system} integration {i}",
            }[kind]
            external_id = (
                f"arn:aws:iam::{rng.randrange(10**11, 10**12)}:role/{name}"
                if provider == "AWS"
                else f"{rng.getrandbits(64):016x}"
            )
            created = now - timedelta(days=rng.uniform(0, 1100))
            nhis.append(
                NonHumanIdentity(
                    name=name,
                    kind=kind,
                    provider=provider,
                    external_id=external_id,
                    environment=env,
                    description="" if rng.random() < 0.6 else f"Used by the {system} service.",
                    owner_team=rng.choices(teams, weights=team_weights)[0] if rng.random() < 0.8 else None,
                    owner=rng.choice(members) if rng.random() < 0.4 else None,
                    privilege_level=rng.choices((0, 1, 2, 3), weights=(25, 45, 20, 10))[0],
                    criticality=rng.choices((0, 1, 2, 3), weights=(30, 40, 20, 10))[0],
                    internet_facing=rng.random() < 0.15,
                    third_party=rng.random() < 0.10,
                    provisioned_at=created - timedelta(days=rng.uniform(0, 30))
                    if rng.random() < 0.7
                    else None,
                    last_used_at=now - timedelta(days=rng.expovariate(1 / 20))
                    if rng.random() < 0.7
                    else None,
                    last_rotated_at=now - timedelta(days=rng.uniform(0, 400)) if rng.random() < 0.5 else None,
                    expires_at=now + timedelta(days=rng.uniform(-60, 365)) if rng.random() < 0.3 else None,
                    lifecycle_state=rng.choices(
                        ("active", "suspended", "decommissioned"), weights=(85, 5, 10)
                    )[0],
                    created_at=created,
                    updated_at=created + timedelta(days=rng.uniform(0, 30)),
                )
            )
        bulk(NonHumanIdentity, nhis)
        nhi_ids = list(NonHumanIdentity.objects.order_by("id").values_list("id", flat=True))
        print(f"  {len(nhi_ids):>7} identities     {time.perf_counter() - t0:6.1f} s", flush=True)

        # Cases: newest first in the list; ages skewed towards recent (more cases lately).
        t0 = time.perf_counter()
        case_kinds = weighted(rng, CASE_KINDS, n_cases)
        severities = weighted(rng, SEVERITIES, n_cases)
        origins = weighted(rng, ORIGINS, n_cases)
        cases = []
        for i in range(n_cases):
            age = min(rng.expovariate(1 / 200), 1000)
            created = now - timedelta(days=age, seconds=rng.randrange(86400))
            state = weighted(rng, STATES_RECENT if age < 60 else STATES_OLD, 1)[0]
            kind, severity, system = case_kinds[i], severities[i], rng.choice(SYSTEMS)
            title = {
                "alert_triage": f"{rng.choice(ALERTS)} svc-{system}-{rng.randrange(1000)}",
                "secret_exposure": f"{rng.choice(EXPOSURES)} for {system} exposed in {rng.choice(LOCATIONS)}",
                "nhi_misuse": f"{system} service account used outside its expected scope",
                "attack_path_review": f"Attack path from {rng.choice(SYSTEMS)} to {system} crown jewels",
                "ai_output": f"Assistant finding: over-privileged {system} identity",
            }[kind]
            assigned = state not in ("identified", "confirmed", "dismissed")
            priority = max(1, min(4, 5 - severity + rng.choice((-1, 0, 0, 0, 1))))
            cases.append(
                Case(
                    title=title,
                    summary=f"Detected on {created:%Y-%m-%d} for the {system} system.",
                    kind=kind,
                    severity=severity,
                    priority=priority,
                    origin=origins[i],
                    state=state,
                    owning_team=rng.choices(teams, weights=team_weights)[0]
                    if (assigned or rng.random() < 0.6)
                    else None,
                    assignee=rng.choice(members) if assigned else None,
                    opened_by=rng.choice(members),
                    due_at=created + timedelta(days=(30, 14, 7, 2)[severity - 1])
                    if rng.random() < 0.7
                    else None,
                    dismissal_reason=rng.choice(("false_positive", "benign")) if state == "dismissed" else "",
                    risk_accepted_until=(created + timedelta(days=180)).date()
                    if state == "risk_accepted"
                    else None,
                    created_at=created,
                    updated_at=created + timedelta(days=rng.uniform(0, min(age, 30))),
                    verified_at=created + timedelta(days=min(age, 10))
                    if state in ("verified", "closed")
                    else None,
                    closed_at=created + timedelta(days=min(age, 12)) if state == "closed" else None,
                )
            )
        bulk(Case, cases)
        case_ids = list(Case.objects.order_by("id").values_list("id", flat=True))
        print(f"  {len(case_ids):>7} cases          {time.perf_counter() - t0:6.1f} s", flush=True)

    # About 60 % of cases concern one to three identities.
    t0 = time.perf_counter()
    links = []
    for case_id in case_ids:
        if rng.random() < 0.6:
            for nhi_id in set(rng.choices(nhi_ids, k=rng.choices((1, 2, 3), weights=(70, 20, 10))[0])):
                links.append(CaseIdentity(case_id=case_id, nhi_id=nhi_id))
    bulk(CaseIdentity, links)
    print(f"  {len(links):>7} case identities {time.perf_counter() - t0:5.1f} s", flush=True)
    return {"cases": len(case_ids), "nhis": len(nhi_ids), "case_identities": len(links), "teams": len(teams)}


def is_seeded(n_cases: int, n_nhis: int) -> bool:
    from django.contrib.auth import get_user_model

    from cases.models import Case
    from nhi_inventory.models import NonHumanIdentity

    users = get_user_model().objects.filter(username__in=(SUPERUSER, ANALYST_USER)).count()
    return users == 2 and Case.objects.count() == n_cases and NonHumanIdentity.objects.count() == n_nhis


def analyze() -> None:
    """PostgreSQL: what autovacuum would soon do on a real server (planner statistics, visibility map)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


# --- Timing ------------------------------------------------------------------------------------------------


@dataclass
class Page:
    name: str
    url: str
    model: str  # "case" or "nhi"
    lookup: dict[str, Any]


PAGES = (
    Page("cases: first page", "/admin/cases/case/", "case", {}),
    Page(
        "cases: ?state=in_progress", "/admin/cases/case/?state=in_progress", "case", {"state": "in_progress"}
    ),
    Page("cases: ?q=payments", "/admin/cases/case/?q=payments", "case", {"title__icontains": "payments"}),
    Page("NHIs: first page", "/admin/nhi_inventory/nonhumanidentity/", "nhi", {}),
    Page(
        "NHIs: ?kind=api_key",
        "/admin/nhi_inventory/nonhumanidentity/?kind=api_key",
        "nhi",
        {"kind": "api_key"},
    ),
    Page(
        "NHIs: ?q=payments",
        "/admin/nhi_inventory/nonhumanidentity/?q=payments",
        "nhi",
        {"search": ("name", "provider", "external_id"), "term": "payments"},
    ),
)


@dataclass
class Result:
    database: str
    user: str
    page: str
    url: str
    matching_rows: int
    queries: int
    sql_ms: float
    cpu_p50_ms: float
    p50_ms: float
    p95_ms: float
    min_ms: float
    max_ms: float
    runs: int
    ok: bool


def matching_rows(page: Page) -> int:
    from django.db.models import Q

    from cases.models import Case
    from nhi_inventory.models import NonHumanIdentity

    model = Case if page.model == "case" else NonHumanIdentity
    lookup = dict(page.lookup)
    if "search" in lookup:
        query = Q()
        for field in lookup["search"]:
            query |= Q(**{f"{field}__icontains": lookup["term"]})
        return model.objects.filter(query).count()
    return model.objects.filter(**lookup).count()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def time_pages(args: argparse.Namespace, label: str) -> list[Result]:
    """Warm up every page, then time them round-robin (so a burst of noise hits all pages alike)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    User = get_user_model()
    results = []
    for username, role in ((SUPERUSER, "superuser"), (ANALYST_USER, "analyst")):
        client = Client()
        client.force_login(User.objects.get(username=username))
        for page in PAGES:
            for _ in range(args.warmup):
                response = client.get(page.url)
                if response.status_code != 200:
                    raise SystemExit(f"{role} GET {page.url} -> {response.status_code}")
        samples: dict[str, list[float]] = {page.url: [] for page in PAGES}
        cpu: dict[str, list[float]] = {page.url: [] for page in PAGES}
        for _ in range(args.runs):
            for page in PAGES:
                start, start_cpu = time.perf_counter(), time.process_time()
                response = client.get(page.url)
                samples[page.url].append((time.perf_counter() - start) * 1000)
                cpu[page.url].append((time.process_time() - start_cpu) * 1000)
                assert response.status_code == 200, response.status_code
        for page in PAGES:
            # Query count and SQL time from a few extra requests (the debug cursor adds a little overhead).
            sql_times: list[float] = []
            captured = CaptureQueriesContext(connection)
            for _ in range(max(1, min(5, args.runs))):
                captured = CaptureQueriesContext(connection)
                with captured:
                    client.get(page.url)
                sql_times.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
            timed = samples[page.url]
            p50 = percentile(timed, 0.50)
            results.append(
                Result(
                    database=label,
                    user=role,
                    page=page.name,
                    url=page.url,
                    matching_rows=matching_rows(page),
                    queries=len(captured.captured_queries),
                    sql_ms=round(statistics.median(sql_times), 1),
                    cpu_p50_ms=round(percentile(cpu[page.url], 0.50), 1),
                    p50_ms=round(p50, 1),
                    p95_ms=round(percentile(timed, 0.95), 1),
                    min_ms=round(min(timed), 1),
                    max_ms=round(max(timed), 1),
                    runs=len(timed),
                    ok=p50 <= args.target_ms,
                )
            )
            if args.explain:
                explain(role, page, captured.captured_queries)
    return results


EXPLAINED_TABLES = ('FROM "cases_case"', 'FROM "nhi_inventory_nonhumanidentity"')


def explain(role: str, page: Page, queries: list[dict[str, str]]) -> None:
    from django.db import connection

    print(f"\n=== {role} {page.url}: {len(queries)} queries")
    for query in queries:
        sql = query["sql"]
        print(f"--- {float(query['time']) * 1000:7.1f} ms  {sql[:400]}{'…' if len(sql) > 400 else ''}")
        if not sql.lstrip().upper().startswith("SELECT") or not any(t in sql for t in EXPLAINED_TABLES):
            continue
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("EXPLAIN ANALYZE " + sql)
                plan = [row[0] for row in cursor.fetchall()]
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql)
                plan = [row[-1] for row in cursor.fetchall()]
        for line in plan:
            print(f"      {line}")


def print_table(results: list[Result], target_ms: float) -> None:
    header = (
        f"{'database':<11}{'user':<10}{'page':<27}{'rows':>7}{'queries':>8}{'sql ms':>8}{'cpu ms':>8}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'min':>7}{'max':>7}  target"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.database:<11}{r.user:<10}{r.page:<27}{r.matching_rows:>7}{r.queries:>8}{r.sql_ms:>8.1f}{r.cpu_p50_ms:>8.1f}"
            f"{r.p50_ms:>8.1f}{r.p95_ms:>8.1f}{r.min_ms:>7.1f}{r.max_ms:>7.1f}  "
            f"{'ok' if r.ok else f'MISS (>{target_ms:g})'}"
        )


def code_version() -> str:
    """The commit timed, and whether tracked files differ from it (read-only git, no index refresh)."""
    import subprocess

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def versions() -> dict[str, str]:
    import platform
    import sqlite3

    import django
    from django.db import connection

    found = {
        "code": code_version(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            found["postgresql"] = cursor.fetchone()[0]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_dedicated(args.database_url, args.force)
    configure_environment(args)
    ensure_database_exists(args.database_url)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from portal import roles

    assert not settings.DEBUG, "the benchmark must run with DEBUG off"
    label = database_label(args.database_url)
    print(
        f"{label}: {safe_url(args.database_url)}  (cases={args.cases}, nhis={args.nhis}, runs={args.runs})",
        flush=True,
    )

    print("  ".join(f"{name} {value}" for name, value in versions().items()), flush=True)

    t0 = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    seeded: dict[str, float] = {}
    if args.reuse and is_seeded(args.cases, args.nhis):
        print("reusing the seeded data", flush=True)
        roles.roles_sync()
    else:
        call_command("flush", interactive=False, verbosity=0)
        roles.roles_sync()
        print("seeding ...", flush=True)
        seed_start = time.perf_counter()
        seeded.update(seed(args.cases, args.nhis))
        analyze()
        seeded["seconds"] = round(time.perf_counter() - seed_start, 1)
        print(f"seeded in {seeded['seconds']} s", flush=True)
    print(f"ready in {time.perf_counter() - t0:.1f} s\n", flush=True)

    load_before = os.getloadavg()
    results = time_pages(args, label)
    load_after = os.getloadavg()
    print(
        f"\nload average (1/5/15 min) before timing: {load_before[0]:.2f} {load_before[1]:.2f} "
        f"{load_before[2]:.2f}; after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
    )
    print()
    print_table(results, args.target_ms)
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
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
        )
    missed = [r for r in results if not r.ok]
    if missed:
        print(f"\n{len(missed)} page(s) miss the p50 target of {args.target_ms:g} ms.")
        return 1
    print(f"\nAll pages meet the p50 target of {args.target_ms:g} ms.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
