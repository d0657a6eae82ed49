"""A realistic demo data set, written through the real services so its history reads like real work.

Idempotent: users, teams and identities are matched by name; a case is created only when no case with its
title exists. Secrets for demo credentials are random, used once for the fingerprint, and dropped.
"""

import hashlib
import io
import json
import random
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from cases import services as case_services
from cases.mapping import mapping_rules_load
from cases.models import ActionKind, ActionStatus, ApprovalKind, Case, CaseKind, EvidenceKind, Severity
from findings.models import ImportRun
from findings.services import attribution_rule_create, findings_import
from frameworks.models import Control
from nhi_inventory import services as nhi_services
from nhi_inventory.models import Criticality, Environment, NHIKind, NonHumanIdentity, PrivilegeLevel, Team
from portal import roles


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str


DEMO_LOGINS = (
    DemoLogin("admin", "admin-demo-2026", "superuser"),
    DemoLogin("analyst", "analyst-demo-2026", roles.ANALYST),
    DemoLogin("approver", "approver-demo-2026", roles.APPROVER),
    DemoLogin("auditor", "auditor-demo-2026", roles.AUDITOR),
    DemoLogin("owner", "owner-demo-2026", f"{roles.OWNER} (Payments)"),
)

TEAMS = (
    ("Platform", "platform"),
    ("Payments", "payments"),
    ("Data", "data"),
    ("Identity & Access", "identity"),
    ("Security Operations", "secops"),
)

PROVIDERS = {
    NHIKind.SERVICE_ACCOUNT: ("AWS", "GCP", "Azure", "Kubernetes", "Snowflake"),
    NHIKind.API_KEY: ("Stripe", "Twilio", "SendGrid", "Datadog", "OpenAI"),
    NHIKind.OAUTH_APP: ("GitHub", "Slack", "Google Workspace", "Salesforce"),
    NHIKind.BOT: ("Slack", "GitHub", "Jira"),
    NHIKind.WORKLOAD_IDENTITY: ("Kubernetes", "GCP", "AWS"),
    NHIKind.CERTIFICATE: ("Internal CA", "Let's Encrypt"),
    NHIKind.TOKEN: ("GitHub", "GitLab", "npm", "HashiCorp Vault"),
    NHIKind.OTHER: ("Okta",),
}
PURPOSES = (
    "deployer",
    "billing-sync",
    "etl",
    "backup",
    "ci-runner",
    "alerts",
    "reporting",
    "ingest",
    "webhook",
    "scanner",
)


@dataclass
class SeedSummary:
    users: int = 0
    teams: int = 0
    identities: int = 0
    credentials: int = 0
    cases: int = 0
    findings: int = 0
    skipped_cases: list[str] = field(default_factory=list)


def _user(login: DemoLogin, summary: SeedSummary) -> Any:
    model = get_user_model()
    user, created = model.objects.get_or_create(
        username=login.username,
        defaults={
            "email": f"{login.username}@demo.example",
            "is_staff": True,
            "first_name": login.username.title(),
        },
    )
    if created:
        user.set_password(login.password)
        user.is_superuser = login.role == "superuser"
        user.save()
        summary.users += 1
    group_name = login.role.split(" (")[0]
    if group_name != "superuser":
        user.groups.add(Group.objects.get(name=group_name))
    return user


@transaction.atomic
def seed_demo() -> SeedSummary:
    roles.roles_sync()
    mapping_rules_load()
    summary = SeedSummary()
    users = {login.username: _user(login, summary) for login in DEMO_LOGINS}
    admin, analyst, approver = users["admin"], users["analyst"], users["approver"]
    teams: dict[str, Team] = {}
    for name, slug in TEAMS:
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            lead = get_user_model().objects.get_or_create(
                username=f"{slug}-lead",
                defaults={"email": f"{slug}-lead@demo.example", "first_name": f"{name} lead"},
            )[0]
            team = nhi_services.team_create(actor=admin, name=name, slug=slug, lead=lead)
            nhi_services.team_member_add(actor=admin, team_id=team.pk, user=lead)
            summary.teams += 1
        teams[slug] = team
    nhi_services.team_member_add(actor=admin, team_id=teams["payments"].pk, user=users["owner"])

    identities = _seed_identities(admin, teams, summary)
    _seed_cases(analyst, approver, teams, identities, summary)
    _seed_findings(analyst, [nhi for nhi in identities if nhi.owner_team_id == teams["payments"].pk], summary)
    return summary


def _demo_secret(label: str) -> str:
    """A made-up secret, the same on every run (the import stores only its fingerprint anyway)."""
    return "demo_" + hashlib.sha256(f"nhi-portal-demo:{label}".encode()).hexdigest()[:32]


def _seed_findings(analyst: Any, payments_identities: list[NonHumanIdentity], summary: SeedSummary) -> None:
    """A small gitleaks report: two secrets of a Payments identity (for the owner page), one of nobody's."""
    if ImportRun.objects.exists() or not payments_identities:
        return
    attribution_rule_create(
        actor=analyst,
        fields={
            "repository_pattern": "github.com/acme/payments-*",
            "nhi": payments_identities[0],
            "note": "The payments services deploy with this identity's keys.",
        },
    )
    findings = [
        ("github.com/acme/payments-service", "deploy/prod.env", 12, "aws-access-token", "aws-prod"),
        ("github.com/acme/payments-service", "deploy/staging.env", 4, "aws-access-token", "aws-prod"),
        ("github.com/acme/payments-webhooks", "src/settings.py", 88, "stripe-access-token", "stripe"),
        ("github.com/acme/marketing-site", "config/analytics.js", 3, "generic-api-key", "analytics"),
    ]
    report = [
        {
            "Description": rule.replace("-", " "),
            "StartLine": line,
            "EndLine": line,
            "StartColumn": 10,
            "EndColumn": 50,
            "Match": f"KEY={_demo_secret(label)}",
            "Secret": _demo_secret(label),
            "File": path,
            "Commit": hashlib.sha1(f"{repository}:{path}".encode(), usedforsecurity=False).hexdigest(),
            "Date": "2026-11-20T09:30:00Z",
            "RuleID": rule,
            "Link": f"https://{repository}/blob/main/{path}#L{line}",
            "Tags": [],
            "Fingerprint": f"{repository}:{path}:{line}",
        }
        for repository, path, line, rule, label in findings
    ]
    for repository in sorted({repository for repository, *_ in findings}):
        run = findings_import(
            actor=analyst,
            report_format="gitleaks",
            source=repository,
            stream=io.BytesIO(
                json.dumps([item for item in report if repository in str(item["Link"])]).encode()
            ),
            file_name="gitleaks-report.json",
        )
        summary.findings += int(run.summary["created"])


def _seed_identities(admin: Any, teams: dict[str, Team], summary: SeedSummary) -> list[NonHumanIdentity]:
    now = timezone.now()
    kinds = list(PROVIDERS)
    team_list = list(teams.values())
    identities = []
    for index in range(50):
        # One generator per identity, so a re-run derives the same names whatever already exists.
        rng = random.Random(2026_000 + index)
        kind = kinds[index % len(kinds)]
        provider = rng.choice(PROVIDERS[kind])
        team = team_list[index % len(team_list)]
        name = (
            f"{team.slug}-{PURPOSES[index % len(PURPOSES)]}-{provider.lower().replace(' ', '-')}-{index:02d}"
        )
        identity = NonHumanIdentity.objects.filter(name=name).first()
        if identity is None:
            # Every seventh identity has no known owner and every fifth no rotation date: the visibility
            # gaps the guidance says most organisations have.
            identity = nhi_services.nhi_create(
                actor=admin,
                name=name,
                kind=kind,
                provider=provider,
                environment=rng.choice(list(Environment.values)),
                owner_team=None if index % 7 == 3 else team,
                privilege_level=rng.choice(list(PrivilegeLevel.values)),
                criticality=rng.choice(list(Criticality.values)),
                internet_facing=rng.random() < 0.3,
                third_party=kind in (NHIKind.API_KEY, NHIKind.OAUTH_APP) and rng.random() < 0.6,
                provisioned_at=now - timedelta(days=rng.randint(30, 1500)),
                last_used_at=None if index % 6 == 2 else now - timedelta(hours=rng.randint(1, 2000)),
                last_rotated_at=None if index % 5 == 1 else now - timedelta(days=rng.randint(1, 700)),
                expires_at=now + timedelta(days=rng.randint(10, 400))
                if kind == NHIKind.CERTIFICATE
                else None,
            )
            summary.identities += 1
            if index % 3 != 0:
                nhi_services.credential_register(
                    actor=admin,
                    nhi_id=identity.pk,
                    credential_type="api_key" if kind == NHIKind.API_KEY else "token",
                    secret=f"demo_{secrets.token_urlsafe(32)}",
                    label=f"{provider} credential",
                )
                summary.credentials += 1
        identities.append(identity)
    return identities


def _open(analyst: Any, title: str, tally: SeedSummary, **fields: Any) -> Case | None:
    if Case.objects.filter(title=title).exists():
        tally.skipped_cases.append(title)
        return None
    tally.cases += 1
    return case_services.case_open(actor=analyst, title=title, **fields)


def _work_to_verified(case: Case, analyst: Any, team: Team, action: str) -> Case:
    case_services.case_confirm(
        case_id=case.pk, actor=analyst, reason="Validated against the provider's audit log."
    )
    case_services.case_assign(
        case_id=case.pk, actor=analyst, assignee=team.lead, owning_team=team, reason="Owning team."
    )
    item = case_services.action_item_add(
        actor=analyst,
        case_id=case.pk,
        kind=ActionKind.ROTATION,
        title=action,
        owning_team=team,
        external_reference=f"SEC-{1000 + case.pk}",
    )
    case_services.case_start_action(case_id=case.pk, actor=analyst, reason="Rotation scheduled.")
    case_services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.DONE)
    case_services.evidence_capture(
        actor=analyst,
        case_id=case.pk,
        kind=EvidenceKind.NOTE,
        title="Rotation record",
        note=f"{action}: old credential revoked, new one issued; no use of the old one seen since.",
    )
    return case_services.case_verify(
        case_id=case.pk, actor=analyst, reason="Provider log shows the old key unused."
    )


def _seed_cases(
    analyst: Any,
    approver: Any,
    teams: dict[str, Team],
    identities: list[NonHumanIdentity],
    tally: SeedSummary,
) -> None:
    payments, platform, secops = teams["payments"], teams["platform"], teams["secops"]
    by_team = {slug: [i for i in identities if i.owner_team_id == team.pk] for slug, team in teams.items()}
    today = timezone.localdate()

    _open(
        analyst,
        "Slack bot token posted in #payments-dev",
        tally,
        kind=CaseKind.SECRET_EXPOSURE,
        severity=Severity.HIGH,
        identities=by_team["payments"][:1],
        summary="Reported by a developer in chat.",
    )

    case = _open(
        analyst,
        "Unusual API volume from billing-sync key",
        tally,
        kind=CaseKind.ALERT_TRIAGE,
        severity=Severity.MEDIUM,
        identities=by_team["payments"][1:2],
    )
    if case:
        case_services.case_confirm(
            case_id=case.pk, actor=analyst, reason="Traffic confirmed from an unknown ASN."
        )

    case = _open(
        analyst,
        "GitHub PAT with org admin scope unused for 200 days",
        tally,
        kind=CaseKind.NHI_MISUSE,
        severity=Severity.MEDIUM,
        identities=by_team["platform"][:1],
    )
    if case:
        case_services.case_confirm(case_id=case.pk, actor=analyst)
        case_services.case_assign(
            case_id=case.pk,
            actor=analyst,
            assignee=platform.lead,
            owning_team=platform,
            reason="Platform owns the GitHub org.",
        )

    case = _open(
        analyst,
        "AWS access key committed to payments-service repo",
        tally,
        kind=CaseKind.SECRET_EXPOSURE,
        severity=Severity.CRITICAL,
        identities=by_team["payments"][2:3],
    )
    if case:
        case_services.case_confirm(case_id=case.pk, actor=analyst, reason="gitleaks finding; key is live.")
        case_services.case_assign(
            case_id=case.pk, actor=analyst, assignee=payments.lead, owning_team=payments
        )
        case_services.action_item_add(
            actor=analyst,
            case_id=case.pk,
            kind=ActionKind.REVOCATION,
            title="Deactivate the leaked access key",
            owning_team=payments,
        )
        case_services.action_item_add(
            actor=analyst,
            case_id=case.pk,
            kind=ActionKind.TICKET,
            title="Purge the key from git history",
            owning_team=platform,
            external_reference="PLAT-4411",
        )
        case_services.case_start_action(case_id=case.pk, actor=analyst, reason="Containment started.")

    case = _open(
        analyst,
        "Datadog API key found in public gist",
        tally,
        kind=CaseKind.SECRET_EXPOSURE,
        severity=Severity.HIGH,
        identities=by_team["data"][:1],
    )
    if case:
        _work_to_verified(case, analyst, teams["data"], "Rotate the Datadog API key")

    case = _open(
        analyst,
        "Stripe restricted key in CI logs",
        tally,
        kind=CaseKind.SECRET_EXPOSURE,
        severity=Severity.HIGH,
        identities=by_team["payments"][3:4],
    )
    if case:
        _work_to_verified(case, analyst, payments, "Roll the Stripe restricted key")
        approval = case_services.approval_request(
            actor=analyst,
            case_id=case.pk,
            kind=ApprovalKind.CLOSURE,
            reason="Key rolled, logs purged, no misuse found.",
        )
        case_services.approval_decide(
            actor=approver, approval_id=approval.pk, approve=True, note="Evidence checked."
        )
        case_services.case_close(case_id=case.pk, actor=analyst, reason="Remediated and verified.")

    case = _open(
        analyst,
        "Test fixture token flagged by scanner",
        tally,
        kind=CaseKind.SECRET_EXPOSURE,
        severity=Severity.LOW,
        identities=[],
    )
    if case:
        case_services.case_dismiss(
            case_id=case.pk,
            actor=analyst,
            dismissal_reason="false_positive",
            reason="Placeholder value in a unit-test fixture; not a real credential.",
        )

    case = _open(
        analyst,
        "Legacy reporting service account without MFA-equivalent controls",
        tally,
        kind=CaseKind.NHI_MISUSE,
        severity=Severity.MEDIUM,
        identities=by_team["data"][1:2],
    )
    if case:
        case_services.case_confirm(case_id=case.pk, actor=analyst)
        approval = case_services.approval_request(
            actor=analyst,
            case_id=case.pk,
            kind=ApprovalKind.RISK_ACCEPTANCE,
            reason="Vendor system is retired next quarter; compensating network controls in place.",
            risk_expires_on=today + timedelta(days=90),
        )
        case_services.approval_decide(
            actor=approver, approval_id=approval.pk, approve=True, note="Accepted for 90 days."
        )

    case = _open(
        analyst,
        "AI assistant: CI deployer can reach production secrets",
        tally,
        kind=CaseKind.AI_OUTPUT,
        severity=Severity.HIGH,
        identities=by_team["platform"][1:2],
        summary="Promoted from an assistant conversation: the recommendation changes ownership and needs "
        "review.",
    )

    case = _open(
        analyst,
        "Attack path: leaked CI token → build runner → production database",
        tally,
        kind=CaseKind.ATTACK_PATH_REVIEW,
        severity=Severity.CRITICAL,
        identities=by_team["platform"][2:3] + by_team["data"][2:3],
    )
    if case:
        case_services.case_confirm(case_id=case.pk, actor=analyst, reason="Path reproduced in staging.")
        controls = {
            c.ref_id: c for c in Control.objects.filter(ref_id__in=("PR.AA-05", "PR.AA-01", "DE.CM-01"))
        }
        steps = (
            (
                "Public repository",
                "CI token",
                "T1552.001 Credentials in files",
                by_team["platform"][2:3],
                "PR.AA-01",
                platform,
            ),
            (
                "CI token",
                "Build runner",
                "T1078.004 Valid cloud accounts",
                by_team["platform"][2:3],
                "PR.AA-05",
                platform,
            ),
            (
                "Build runner",
                "Production database",
                "T1021 Remote services",
                by_team["data"][2:3],
                "DE.CM-01",
                secops,
            ),
        )
        for source, target, technique, nhis, control, team in steps:
            step = case_services.attack_path_step_add(
                actor=analyst,
                case_id=case.pk,
                source_node=source,
                target_node=target,
                technique=technique,
                nhi=nhis[0] if nhis else None,
                failed_control=controls.get(control),
                remediation_team=team,
            )
        case_services.attack_path_step_route(actor=analyst, step_id=step.pk, kind=ActionKind.CONTAINMENT)
        case_services.comment_add(
            actor=analyst,
            case_id=case.pk,
            body="Step 3 routed to SecOps; steps 1–2 wait for Platform's review.",
        )
