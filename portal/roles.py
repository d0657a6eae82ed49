"""The roles of the portal as Django groups, with exactly the permissions each needs.

Scoping (an owner sees only their teams' identities and cases) is done by the selectors; these
permissions say what each role may do within what it can see.
"""

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.db.models import Q

ANALYST = "Compliance analyst"
APPROVER = "Approver"
AUDITOR = "Auditor"
OWNER = "NHI owner"
# The portal's own account: imports from the command line, and the case updates that follow an owner's
# answer (owners answer for their identities; they do not get to open or move cases themselves).
AUTOMATION = "Automation"
AUTOMATION_USERNAME = "portal-automation"
# The hand-offs' own account (handoffs/): it records what a signed callback from the ticketing, containment
# or revocation system reports (an action item done or failed) and a delivery given up. Apart from
# Automation, whose token AI assistants use and which must never complete work.
HANDOFFS = "Hand-offs"
HANDOFFS_USERNAME = "portal-handoffs"

_DOMAIN_APPS = ("cases", "nhi_inventory", "frameworks", "findings", "intake", "handoffs", "audit")
_VIEW_EVERYTHING = ("cases.view_all_cases", "nhi_inventory.view_all_identities")


@dataclass(frozen=True)
class Role:
    name: str
    permissions: tuple[str, ...]
    view_all_domain_models: bool


ROLES = (
    Role(
        name=ANALYST,
        view_all_domain_models=True,
        permissions=(
            *_VIEW_EVERYTHING,
            "cases.add_case",
            "cases.change_case",
            "cases.confirm_case",
            "cases.assign_case",
            "cases.act_on_case",
            "cases.verify_case",
            "cases.close_case",
            "cases.dismiss_case",
            "cases.reopen_case",
            "cases.request_approval",
            "cases.add_evidence",
            "cases.add_actionitem",
            "cases.change_actionitem",
            "cases.propose_actionitem",
            "cases.add_comment",
            "cases.add_attackpathstep",
            "cases.map_case",
            "cases.add_reportsnapshot",
            "cases.add_mappingrule",
            "cases.change_mappingrule",
            "cases.change_slapolicy",
            "nhi_inventory.add_team",
            "nhi_inventory.change_team",
            "nhi_inventory.add_nonhumanidentity",
            "nhi_inventory.change_nonhumanidentity",
            "nhi_inventory.add_credential",
            "nhi_inventory.change_credential",
            "findings.import_findings",
            "findings.attribute_exposure",
            "findings.add_attributionrule",
            "findings.change_attributionrule",
            "findings.add_promotionrule",
            "findings.change_promotionrule",
            "intake.submit_assistantoutput",
            # Hand action items off to ticketing, containment and revocation; configure where they go.
            "handoffs.dispatch_handoff",
            "handoffs.add_webhookendpoint",
            "handoffs.change_webhookendpoint",
            # The user autocompletes (identity owner, team lead and members) need read access to users.
            "auth.view_user",
            # A case's signed evidence bundle for auditors (audit/bundle.py).
            "audit.export_evidence_bundle",
        ),
    ),
    Role(
        name=APPROVER,
        view_all_domain_models=True,
        permissions=(
            *_VIEW_EVERYTHING,
            "cases.decide_approval",
            # Work an assistant proposed waits for this person's approval (never the submitter's).
            "cases.approve_actionitem",
            "cases.close_case",
            "cases.add_comment",
            "cases.add_reportsnapshot",
            "audit.export_evidence_bundle",
        ),
    ),
    # Saving a report snapshot is how auditors keep exactly what was shown.
    Role(
        name=AUDITOR,
        view_all_domain_models=True,
        permissions=(*_VIEW_EVERYTHING, "cases.add_reportsnapshot", "audit.export_evidence_bundle"),
    ),
    Role(
        name=OWNER,
        view_all_domain_models=False,
        permissions=(
            "cases.view_case",
            "cases.view_evidence",
            "cases.view_actionitem",
            "cases.view_approval",
            "cases.view_comment",
            "cases.view_attackpathstep",
            "cases.view_caseidentity",
            "cases.view_casecontrolmapping",
            "cases.add_evidence",
            "cases.change_actionitem",
            "cases.add_comment",
            "nhi_inventory.view_team",
            "nhi_inventory.view_nonhumanidentity",
            "nhi_inventory.view_credential",
            "nhi_inventory.change_nonhumanidentity",
            "frameworks.view_framework",
            "frameworks.view_control",
            "findings.view_exposure",
            "findings.view_finding",
            "findings.answer_exposure",
            # Assistant outputs about their identities (intake.selectors.assistant_output_list).
            "intake.view_assistantoutput",
        ),
    ),
    Role(
        name=AUTOMATION,
        view_all_domain_models=True,
        permissions=(
            *_VIEW_EVERYTHING,
            "cases.add_case",
            "cases.change_case",
            "cases.confirm_case",
            "cases.reopen_case",
            "cases.add_comment",
            "nhi_inventory.change_credential",
            "findings.import_findings",
            "findings.attribute_exposure",
            # The AI/chat intake: open or join cases, propose work (never approve or do it), keep evidence.
            "intake.submit_assistantoutput",
            "cases.propose_actionitem",
            "cases.add_evidence",
            # The periodic jobs (cases/sweeps.py): escalate overdue cases, reopen expired risk acceptances
            # (reopen_case above), take the weekly report snapshots.
            "cases.escalate_case",
            "cases.add_reportsnapshot",
        ),
    ),
    Role(
        name=HANDOFFS,
        view_all_domain_models=False,
        permissions=(
            "cases.view_all_cases",
            "cases.change_actionitem",
            "cases.add_comment",
            "handoffs.record_handoff_outcome",
        ),
    ),
)


def _permissions(codes: tuple[str, ...]) -> list[Permission]:
    query = Q()
    for code in codes:
        app_label, codename = code.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(query))
    missing = set(codes) - {f"{p.content_type.app_label}.{p.codename}" for p in found}
    if missing:
        raise LookupError(f"Unknown permission(s) in role definitions: {', '.join(sorted(missing))}.")
    return found


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create the groups and set their permissions to exactly the definitions above (idempotent)."""
    counts = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role.name)
        permissions = _permissions(role.permissions)
        if role.view_all_domain_models:
            permissions += list(
                Permission.objects.filter(
                    content_type__app_label__in=_DOMAIN_APPS, codename__startswith="view_"
                )
            )
        group.permissions.set(permissions)
        counts[role.name] = group.permissions.count()
    automation_user()
    handoffs_user()
    return counts


def automation_user() -> User:
    """The portal's own account, in the Automation group; it has no password and cannot sign in."""
    return _system_account(AUTOMATION_USERNAME, last_name="automation", group=AUTOMATION)


def handoffs_user() -> User:
    """The hand-offs' own account, in its own group; it has no password and cannot sign in."""
    return _system_account(HANDOFFS_USERNAME, last_name="hand-offs", group=HANDOFFS)


def _system_account(username: str, *, last_name: str, group: str) -> User:
    user, created = User.objects.get_or_create(
        username=username, defaults={"first_name": "Portal", "last_name": last_name, "is_active": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=group))
    return user
