"""Framework mapping in the admin: the rules' pages, the case page's controls and its two mapping actions."""

import pytest
from django.urls import reverse

from cases import mapping
from cases.models import Case, CaseControlMapping, CaseKind, MappingCondition, MappingRule
from frameworks.models import Control
from frameworks.services import CATALOG_DIR, catalog_load


@pytest.fixture
def nhi2_rule(db, analyst):
    """The OWASP catalog (cheap to load) and one rule: secret exposures fall under NHI2."""
    catalog_load(path=CATALOG_DIR / "owasp-nhi-top10-2025.json")
    return mapping.mapping_rule_create(
        actor=analyst,
        case_kind=CaseKind.SECRET_EXPOSURE,
        condition=MappingCondition.ALWAYS,
        control=Control.objects.get(ref_id="NHI2"),
        rationale="A leaked secret lets anyone act as the identity.",
    )


def control(ref_id):
    return Control.objects.get(ref_id=ref_id)


def action_url(case: Case, name: str) -> str:
    return reverse("admin:cases_case_action", args=(case.pk, name))


def case_page(client, user, case: Case) -> str:
    client.force_login(user)
    response = client.get(reverse("admin:cases_case_change", args=(case.pk,)))
    assert response.status_code == 200
    return response.content.decode()


# --- The case page ------------------------------------------------------------------------------------------


def test_the_case_page_offers_the_analyst_map_to_control(client, analyst, nhi2_rule, open_case):
    assert 'data-case-action="map_control"' in case_page(client, analyst, open_case())


def test_the_case_page_offers_the_analyst_remove_control_mapping(client, analyst, nhi2_rule, open_case):
    assert 'data-case-action="unmap_control"' in case_page(client, analyst, open_case())


def test_remove_control_mapping_is_explained_when_nothing_is_mapped(client, analyst, open_case, db):
    page = case_page(client, analyst, open_case())

    assert 'data-blocked-action="unmap_control"' in page
    assert "No control is mapped to this case." in page


def test_the_case_page_lists_its_framework_controls(client, auditor, nhi2_rule, open_case):
    page = case_page(client, auditor, open_case())

    assert "Framework controls" in page
    assert "A leaked secret lets anyone act as the identity." in page


def test_the_owner_sees_their_cases_framework_controls(client, owner, nhi2_rule, open_case):
    assert "A leaked secret lets anyone act as the identity." in case_page(client, owner, open_case())


def test_posting_map_to_control_creates_the_mapping(client, analyst, nhi2_rule, open_case):
    case = open_case()
    client.force_login(analyst)

    response = client.post(
        action_url(case, "map_control"), {"control": control("NHI10").pk, "rationale": "misused as well"}
    )

    assert response.status_code == 302
    row = CaseControlMapping.objects.get(case=case, control__ref_id="NHI10")
    assert (row.is_active, row.rationale, row.changed_by) == (True, "misused as well", analyst)


def test_posting_map_to_control_without_a_rationale_shows_the_error(client, analyst, nhi2_rule, open_case):
    case = open_case()
    client.force_login(analyst)

    response = client.post(action_url(case, "map_control"), {"control": control("NHI10").pk, "rationale": ""})

    assert response.context["form"].errors["rationale"] == ["This field is required."]
    assert not CaseControlMapping.objects.filter(case=case, control__ref_id="NHI10").exists()


def test_posting_map_to_an_already_mapped_control_shows_the_refusal(client, analyst, nhi2_rule, open_case):
    case = open_case()
    client.force_login(analyst)

    response = client.post(action_url(case, "map_control"), {"control": control("NHI2").pk, "rationale": "x"})

    assert response.status_code == 200
    assert "already mapped to NHI2" in str(response.context["form"].non_field_errors())


def test_posting_remove_control_mapping_deactivates_it(client, analyst, nhi2_rule, open_case):
    case = open_case()
    client.force_login(analyst)

    client.post(action_url(case, "unmap_control"), {"control": control("NHI2").pk, "rationale": "vault only"})

    row = CaseControlMapping.objects.get(case=case, control__ref_id="NHI2")
    assert (row.is_active, row.removed_by_hand, row.rationale) == (False, True, "vault only")


def test_map_to_control_posted_by_the_auditor_is_refused(client, auditor, nhi2_rule, open_case):
    case = open_case()
    client.force_login(auditor)

    response = client.post(
        action_url(case, "map_control"), {"control": control("NHI10").pk, "rationale": "x"}
    )

    assert response.status_code == 403
    assert not CaseControlMapping.objects.filter(case=case, control__ref_id="NHI10").exists()


def test_the_control_field_of_the_mapping_form_searches_controls(client, analyst, nhi2_rule):
    client.force_login(analyst)

    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "cases", "model_name": "casecontrolmapping", "field_name": "control", "term": "NHI10"},
    )

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(control("NHI10").pk)]


# --- The rules' pages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["analyst", "auditor"])
@pytest.mark.parametrize("view", ["changelist", "change"])
def test_staff_personas_can_open_the_mapping_rule_pages(client, request, nhi2_rule, persona, view):
    client.force_login(request.getfixturevalue(persona))
    args = (nhi2_rule.pk,) if view == "change" else ()

    assert client.get(reverse(f"admin:cases_mappingrule_{view}", args=args)).status_code == 200


def rule_form(rule: MappingRule, **changes):
    return {
        "case_kind": rule.case_kind,
        "condition": rule.condition,
        "control": rule.control_id,
        "rationale": rule.rationale,
        "is_active": "on" if rule.is_active else "",
        **changes,
    }


def test_the_analyst_edits_a_rule_through_the_service(client, analyst, nhi2_rule):
    client.force_login(analyst)

    response = client.post(
        reverse("admin:cases_mappingrule_change", args=(nhi2_rule.pk,)),
        rule_form(nhi2_rule, rationale="Our own wording."),
    )

    assert response.status_code == 302
    entry = nhi2_rule.history.latest("history_id")
    assert (entry.rationale, entry.history_user, entry.history_change_reason) == (
        "Our own wording.",
        analyst,
        "edited rationale",
    )


def test_the_analyst_adds_a_rule_through_the_service(client, analyst, nhi2_rule):
    client.force_login(analyst)

    response = client.post(
        reverse("admin:cases_mappingrule_add"),
        rule_form(nhi2_rule, control=control("NHI10").pk, rationale="Leaked secrets get misused."),
    )

    assert response.status_code == 302
    rule = MappingRule.objects.get(control__ref_id="NHI10")
    assert rule.history.get().history_change_reason == "created"


def test_the_auditors_post_to_a_rule_changes_nothing(client, auditor, nhi2_rule):
    client.force_login(auditor)

    response = client.post(
        reverse("admin:cases_mappingrule_change", args=(nhi2_rule.pk,)),
        rule_form(nhi2_rule, rationale="edited by the auditor"),
    )

    assert response.status_code == 403
    nhi2_rule.refresh_from_db()
    assert nhi2_rule.rationale == "A leaked secret lets anyone act as the identity."


def test_a_rule_cannot_be_deleted_even_by_the_analyst(client, analyst, nhi2_rule):
    client.force_login(analyst)

    response = client.post(reverse("admin:cases_mappingrule_delete", args=(nhi2_rule.pk,)), {"post": "yes"})

    assert response.status_code == 403
    assert MappingRule.objects.filter(pk=nhi2_rule.pk).exists()
