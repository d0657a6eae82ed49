"""The admin as each persona sees it: which pages open, which buttons show, what a POST does."""

import io
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import models
from django.test import RequestFactory
from django.urls import reverse

from audit.models import VerificationTrigger
from audit.services import audit_trail_verify
from cases import services as case_services
from cases.mapping import mapping_rule_create
from cases.models import ApprovalKind, Case, CaseKind, CaseState, CaseTransition, Severity
from cases.reports.services import report_snapshot_create
from findings.jobs import ingest_job_create
from findings.pending_files import EncryptedUpload
from findings.services import attribution_rule_create, findings_import
from frameworks.models import Control
from frameworks.services import CATALOG_DIR, catalog_load
from handoffs.services import handoff_dispatch, webhook_endpoint_create
from intake.rules import Facts
from intake.services import assistant_output_submit
from nhi_inventory import services as nhi_services
from nhi_inventory.models import Credential, CredentialType
from portal import roles
from portal.services import api_token_create
from tests.factories import UserFactory
from tests.findings.reports import gitleaks_v8

DOMAIN_APPS = ("cases", "nhi_inventory", "frameworks", "findings", "intake", "handoffs", "audit")
DOMAIN_MODELS = sorted(
    model._meta.label for model in admin.site._registry if model._meta.app_label in DOMAIN_APPS
)
SECRET = "sk_live_51HxAdminFormSecretValue0987654321zyx"


def model_named(label: str) -> type[models.Model]:
    return apps.get_model(label)


def admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def every_model_has_a_row(case_in_state, open_case, analyst, payments, payments_identity) -> None:
    """At least one row of every model registered in the admin, written through the services."""
    catalog_load(path=CATALOG_DIR / "owasp-nhi-top10-2025.json")
    mapping_rule_create(  # before the case opens, so the case is mapped too
        actor=analyst,
        case_kind=CaseKind.SECRET_EXPOSURE,
        condition="always",
        control=Control.objects.get(ref_id="NHI2"),
        rationale="A leaked secret lets anyone act as the identity.",
    )
    case = case_in_state(CaseState.CLOSED, severity=Severity.HIGH)
    case_services.comment_add(actor=analyst, case_id=case.pk, body="Rotated and verified.")
    review = open_case(kind=CaseKind.ATTACK_PATH_REVIEW)
    case_services.attack_path_step_add(
        actor=analyst,
        case_id=review.pk,
        source_node="CI runner",
        target_node="prod DB",
        technique="T1552",
        nhi=payments_identity,
        failed_control=Control.objects.get(ref_id="NHI2"),
        remediation_team=payments,
    )
    nhi_services.team_member_add(actor=analyst, team_id=payments.pk, user=analyst)
    nhi_services.credential_register(
        actor=analyst, nhi_id=payments_identity.pk, credential_type=CredentialType.API_KEY, secret="x" * 40
    )
    report_snapshot_create(
        actor=analyst, framework_key="owasp-nhi-top10-2025", fmt="csv", since=None, until=None
    )
    attribution_rule_create(actor=analyst, fields={"repository_pattern": "acme/*", "nhi": payments_identity})
    findings_import(
        actor=analyst,
        report_format="gitleaks",
        source="acme/payments",
        stream=io.BytesIO(gitleaks_v8({"Secret": SECRET, "File": "deploy/prod.env"})),
    )
    ingest_job_create(  # queued: its task is sent only on commit, which never comes in this test
        actor=analyst,
        report_format="gitleaks",
        source="acme/payments",
        upload=EncryptedUpload.from_bytes(gitleaks_v8({"Secret": SECRET, "File": "a.env"}), name="big.json"),
    )
    api_token_create(actor=analyst, user_id=analyst.pk, name="gitleaks in CI")
    assistant_output_submit(
        actor=analyst,
        summary="The deploy key leaked.",
        recommendation="Revoke it.",
        assistant="SecOps Copilot",
        facts=Facts(
            needs_multi_person_review=False,
            triggers_downstream_work=False,
            must_be_retained_as_evidence=True,
            depends_on_fresh_context=False,
        ),
        nhi_ids=[payments_identity.pk],
    )
    webhook_endpoint_create(
        actor=analyst, name="Payments Jira", url="https://jira.example.com/hook", team=payments
    )
    ticket = case_services.action_item_add(
        actor=analyst, case_id=review.pk, kind="ticket", title="Open a ticket", owning_team=payments
    )
    # Queued: its task is sent only on commit, which never comes in this test.
    handoff_dispatch(actor=analyst, action_item_id=ticket.pk)
    audit_trail_verify(trigger=VerificationTrigger.COMMAND)


def test_every_domain_model_has_a_row_in_the_fixture(every_model_has_a_row):
    assert DOMAIN_MODELS
    assert [label for label in DOMAIN_MODELS if not model_named(label)._default_manager.exists()] == []


# --- Every registered model, as each persona ----------------------------------------------------------------
# One loop per behaviour (the shared rows are costly to build); a failure lists every page that misbehaved.


def pages(labels: list[str], views: tuple[str, ...] = ("changelist", "change")) -> list[str]:
    urls = []
    for label in labels:
        model = model_named(label)
        row = model._default_manager.first()
        assert row is not None, f"no {label} row to open"
        for view in views:
            urls.append(admin_url(model, view, row.pk) if view == "change" else admin_url(model, view))
    return urls


def statuses(client, urls: list[str]) -> dict[str, int]:
    return {url: client.get(url).status_code for url in urls}


@pytest.mark.parametrize("persona", ["analyst", "auditor"])
def test_staff_personas_can_open_every_changelist(client, request, every_model_has_a_row, persona):
    client.force_login(request.getfixturevalue(persona))
    empty = []
    for label in DOMAIN_MODELS:
        response = client.get(admin_url(model_named(label), "changelist"))
        assert response.status_code == 200, label
        if response.context["cl"].result_count == 0:
            empty.append(label)

    assert empty == []


@pytest.mark.parametrize("persona", ["analyst", "auditor"])
def test_staff_personas_can_open_every_change_page(client, request, every_model_has_a_row, persona):
    client.force_login(request.getfixturevalue(persona))

    failing = {
        url: status
        for url, status in statuses(client, pages(DOMAIN_MODELS, ("change",))).items()
        if status != 200
    }

    assert failing == {}


def test_an_anonymous_visitor_is_sent_to_the_login_page_from_every_admin_page(client, every_model_has_a_row):
    labels = sorted(model._meta.label for model in admin.site._registry)
    responses = {url: client.get(url) for url in pages(labels)}

    not_redirected = [
        url for url, r in responses.items() if r.status_code != 302 or not r.url.startswith("/admin/login/")
    ]
    assert not_redirected == []


def test_the_outsider_is_sent_to_the_login_page_from_every_admin_page(
    client, outsider, every_model_has_a_row
):
    labels = sorted(model._meta.label for model in admin.site._registry)
    client.force_login(outsider)
    responses = {url: client.get(url) for url in pages(labels)}

    not_redirected = [
        url for url, r in responses.items() if r.status_code != 302 or not r.url.startswith("/admin/login/")
    ]
    assert not_redirected == []


@pytest.mark.parametrize("label", DOMAIN_MODELS)
def test_the_auditor_has_no_add_permission(auditor, label):
    request = RequestFactory().get("/admin/")
    request.user = auditor

    assert not admin.site._registry[model_named(label)].has_add_permission(request)


def test_the_auditor_sees_no_add_button_on_any_changelist(client, auditor, every_model_has_a_row):
    client.force_login(auditor)

    offering_add = [
        label
        for label in DOMAIN_MODELS
        if admin_url(model_named(label), "add")
        in client.get(admin_url(model_named(label), "changelist")).content.decode()
    ]

    assert offering_add == []


def test_the_auditor_sees_no_save_button_on_any_change_page(client, auditor, every_model_has_a_row):
    client.force_login(auditor)

    offering_save = [
        url for url in pages(DOMAIN_MODELS, ("change",)) if 'name="_save"' in client.get(url).content.decode()
    ]

    assert offering_save == []


def test_the_auditors_post_to_any_change_page_is_refused(client, auditor, every_model_has_a_row):
    client.force_login(auditor)

    accepted = {
        url: response.status_code
        for url in pages(DOMAIN_MODELS, ("change",))
        if (response := client.post(url, {"title": "edited by the auditor", "name": "x"})).status_code != 403
    }

    assert accepted == {}


@pytest.mark.parametrize("persona", ["analyst", "auditor"])
def test_staff_personas_cannot_manage_groups(client, request, persona):
    client.force_login(request.getfixturevalue(persona))

    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403


def test_the_analyst_can_search_people_to_name_an_identitys_owner(client, analyst):
    # The owner field of an identity is an autocomplete over users: the analyst must be able to use it.
    client.force_login(analyst)

    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "nhi_inventory",
            "model_name": "nonhumanidentity",
            "field_name": "owner",
            "term": "anal",
        },
    )

    assert response.status_code == 200
    assert [row["text"] for row in response.json()["results"]] == ["analyst"]


def test_the_team_autocomplete_lists_teams_by_name(client, analyst):
    for name in ("Zeta", "Alpha", "Mu"):
        nhi_services.team_create(actor=analyst, name=name, slug=name.lower())
    client.force_login(analyst)

    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "nhi_inventory",
            "model_name": "nonhumanidentity",
            "field_name": "owner_team",
            "term": "",
        },
    )

    assert [row["text"] for row in response.json()["results"]] == ["Alpha", "Mu", "Zeta"]


def test_the_analyst_cannot_change_people(client, analyst):
    client.force_login(analyst)

    response = client.post(admin_url(model_named("auth.User"), "change", analyst.pk), {"username": "renamed"})

    assert response.status_code == 403


# --- The case page: the buttons each person sees ------------------------------------------------------------


def case_page(client, user, case: Case) -> str:
    client.force_login(user)
    response = client.get(admin_url(Case, "change", case.pk))
    assert response.status_code == 200
    return response.content.decode()


def test_a_confirmed_case_offers_the_analyst_assign(client, analyst, case_in_state):
    page = case_page(client, analyst, case_in_state(CaseState.CONFIRMED))

    assert 'data-case-action="assign"' in page


def test_a_confirmed_case_does_not_offer_the_analyst_verify(client, analyst, case_in_state):
    page = case_page(client, analyst, case_in_state(CaseState.CONFIRMED))

    assert 'data-case-action="verify"' not in page
    assert 'data-blocked-action="verify"' not in page


def test_a_blocked_action_is_explained(client, analyst, case_in_state):
    page = case_page(client, analyst, case_in_state(CaseState.ASSIGNED))

    assert 'data-case-action="start_action"' not in page
    assert 'data-blocked-action="start_action"' in page
    assert "Starting action needs at least one action item." in page


def test_the_auditor_sees_no_case_action(client, auditor, case_in_state):
    page = case_page(client, auditor, case_in_state(CaseState.CONFIRMED))

    assert "data-case-action" not in page


@pytest.fixture
def pending_closure(case_in_state, analyst):
    case = case_in_state(CaseState.IN_PROGRESS, severity=Severity.HIGH)
    approval = case_services.approval_request(
        actor=analyst, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="done"
    )
    return case, approval


def test_the_approver_sees_decide_on_a_request_by_the_analyst(client, approver, pending_closure):
    case, approval = pending_closure

    page = case_page(client, approver, case)

    assert 'data-case-action="decide"' in page
    assert reverse("admin:cases_case_decide", args=(case.pk, approval.pk)) in page


def test_the_analyst_does_not_see_decide_on_their_own_request(client, analyst, pending_closure):
    case, _ = pending_closure

    assert 'data-case-action="decide"' not in case_page(client, analyst, case)


def test_a_person_with_both_roles_does_not_see_decide_on_their_own_request(
    client, role_groups, case_in_state
):
    both: Any = UserFactory.create(username="both-roles")
    both.groups.add(*Group.objects.filter(name__in=(roles.ANALYST, roles.APPROVER)))
    case = case_in_state(CaseState.IN_PROGRESS, severity=Severity.HIGH)
    case_services.approval_request(actor=both, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="done")

    assert 'data-case-action="decide"' not in case_page(client, both, case)


def test_deciding_ones_own_request_through_the_url_is_refused(client, analyst, pending_closure):
    case, approval = pending_closure
    client.force_login(analyst)

    response = client.post(
        reverse("admin:cases_case_decide", args=(case.pk, approval.pk)), {"approve": "yes", "note": ""}
    )

    assert response.status_code == 403
    approval.refresh_from_db()
    assert approval.status == "pending"


# --- Case actions posted through the admin ------------------------------------------------------------------


def action_url(case: Case, name: str) -> str:
    return reverse("admin:cases_case_action", args=(case.pk, name))


def test_posting_assign_assigns_the_case(client, analyst, payments, case_in_state):
    case = case_in_state(CaseState.CONFIRMED)
    client.force_login(analyst)

    response = client.post(
        action_url(case, "assign"),
        {"assignee": analyst.pk, "owning_team": payments.pk, "reason": "Payments owns it"},
    )

    assert response.status_code == 302
    assert response.url == admin_url(Case, "change", case.pk)
    case.refresh_from_db()
    assert (case.state, case.assignee, case.owning_team) == (CaseState.ASSIGNED, analyst, payments)


def test_posting_assign_records_the_transition(client, analyst, payments, case_in_state):
    case = case_in_state(CaseState.CONFIRMED)
    client.force_login(analyst)

    client.post(
        action_url(case, "assign"),
        {"assignee": analyst.pk, "owning_team": payments.pk, "reason": "Payments owns it"},
    )

    step = CaseTransition.objects.filter(case=case).latest("at", "id")
    assert (step.name, step.source_state, step.target_state) == (
        "assign",
        CaseState.CONFIRMED,
        CaseState.ASSIGNED,
    )
    assert (step.actor, step.reason) == (analyst, "Payments owns it")


def test_posting_dismiss_without_a_reason_shows_the_error_and_changes_nothing(client, analyst, open_case):
    case = open_case()
    transitions = CaseTransition.objects.filter(case=case).count()
    client.force_login(analyst)

    response = client.post(action_url(case, "dismiss"), {"dismissal_reason": "false_positive", "reason": ""})

    assert response.status_code == 200
    assert response.context["form"].errors["reason"] == ["This field is required."]
    case.refresh_from_db()
    assert case.state == CaseState.IDENTIFIED
    assert CaseTransition.objects.filter(case=case).count() == transitions


def test_an_action_the_state_does_not_offer_is_refused(client, analyst, case_in_state):
    case = case_in_state(CaseState.CONFIRMED)
    client.force_login(analyst)

    assert client.get(action_url(case, "verify")).status_code == 403


def test_an_action_the_person_may_not_take_is_refused(client, auditor, case_in_state):
    case = case_in_state(CaseState.CONFIRMED)
    client.force_login(auditor)

    assert client.get(action_url(case, "assign")).status_code == 403


def test_an_action_posted_by_a_person_who_may_not_take_it_changes_nothing(
    client, auditor, payments, case_in_state
):
    case = case_in_state(CaseState.CONFIRMED)
    client.force_login(auditor)

    response = client.post(action_url(case, "assign"), {"assignee": auditor.pk, "owning_team": payments.pk})

    assert response.status_code == 403
    case.refresh_from_db()
    assert case.state == CaseState.CONFIRMED


def test_an_unknown_action_is_not_found(client, analyst, open_case):
    client.force_login(analyst)

    assert client.get(action_url(open_case(), "teleport")).status_code == 404


# --- The owner: only their team's cases ---------------------------------------------------------------------


@pytest.fixture
def two_teams_cases(open_case, payments_identity, platform_identity):
    return open_case(identities=[payments_identity]), open_case(identities=[platform_identity])


def test_the_owner_changelist_shows_only_their_teams_cases(client, owner, two_teams_cases):
    own, _ = two_teams_cases
    client.force_login(owner)

    response = client.get(admin_url(Case, "changelist"))

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [own]


def test_the_owner_cannot_open_another_teams_case(client, owner, two_teams_cases):
    _, other = two_teams_cases
    client.force_login(owner)

    response = client.get(admin_url(Case, "change", other.pk), follow=True)

    assert response.redirect_chain[0] == (reverse("admin:index"), 302)
    assert other.reference not in response.content.decode()


def test_the_owner_cannot_reach_an_action_on_another_teams_case(client, owner, two_teams_cases):
    _, other = two_teams_cases
    client.force_login(owner)

    assert client.get(action_url(other, "comment")).status_code == 404


def test_the_owner_can_open_their_teams_case(client, owner, two_teams_cases):
    own, _ = two_teams_cases

    assert own.reference in case_page(client, owner, own)


# --- Registering a credential in the admin ------------------------------------------------------------------


def post_credential(client, analyst, identity, secret: str = SECRET):
    client.force_login(analyst)
    return client.post(
        admin_url(Credential, "add"),
        {
            "nhi": identity.pk,
            "credential_type": CredentialType.API_KEY,
            "label": "Stripe live key",
            "secret": secret,
            "issued_at_0": "",
            "issued_at_1": "",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )


def text_in_table(model: type[models.Model]) -> list[str]:
    fields = [
        f.attname for f in model._meta.concrete_fields if isinstance(f, (models.CharField, models.TextField))
    ]
    return [str(value) for row in model._default_manager.values_list(*fields) for value in row if value]


def test_the_admin_add_form_registers_a_credential_by_fingerprint(client, analyst, payments_identity):
    response = post_credential(client, analyst, payments_identity)

    assert response.status_code == 200
    credential = Credential.objects.get()
    assert credential.preview == f"sk_l…({len(SECRET)} chars)"
    assert len(credential.fingerprint) == 64
    assert credential.history.get().history_user == analyst


def test_the_admin_add_form_does_not_echo_the_secret(client, analyst, payments_identity):
    response = post_credential(client, analyst, payments_identity)

    assert SECRET[4:] not in response.content.decode()


def test_the_admin_add_form_stores_the_secret_nowhere(client, analyst, payments_identity):
    post_credential(client, analyst, payments_identity)

    leaks = {
        model._meta.label
        for model in apps.get_models()
        for value in text_in_table(model)
        if SECRET[4:] in value
    }
    assert leaks == set()


def test_the_admin_add_form_refuses_a_duplicate_without_echoing_it(
    client, analyst, payments_identity, platform_identity
):
    post_credential(client, analyst, payments_identity)

    response = post_credential(client, analyst, platform_identity)

    assert "This secret is already registered" in response.content.decode()
    assert SECRET[4:] not in response.content.decode()
    assert Credential.objects.count() == 1
