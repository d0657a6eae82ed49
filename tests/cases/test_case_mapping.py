"""Cases mapped to framework controls: by the rules when a case opens or changes; by hand, with a reason."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from cases import mapping, services
from cases.errors import CaseWorkflowError
from cases.models import CaseControlMapping, CaseKind, MappingCondition, MappingRule, MappingSource
from frameworks.models import Control
from tests.factories import NonHumanIdentityFactory

SECRET_EXPOSURE_ALWAYS = {"NHI2", "RS.AN-03", "RS.AN-06", "RS.AN-07", "PR.AA-01"}
ALERT_TRIAGE = {"DE.AE-02", "RS.MA-02", "RS.AN-03"}


@pytest.fixture(scope="module")
def _catalogs_and_rules(django_db_setup, django_db_blocker):
    """The catalogs and the shipped rules, loaded once for this module inside a transaction rolled back at its
    end; each test runs in a savepoint within it (loading them per test would cost ~0.5 s each)."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("load_catalogs", stdout=StringIO())
        created = mapping.mapping_rules_load()
        yield created
        transaction.set_rollback(True)


@pytest.fixture
def rules(_catalogs_and_rules, db):
    return _catalogs_and_rules


@pytest.fixture
def fresh_identity(payments):
    """Rotated last week: its credentials are not long-lived."""
    return NonHumanIdentityFactory.create(
        name="fresh-bot", owner_team=payments, last_rotated_at=timezone.now() - timedelta(days=7)
    )


@pytest.fixture
def stale_identity(payments):
    return NonHumanIdentityFactory.create(name="stale-bot", owner_team=payments, last_rotated_at=None)


def control(ref_id):
    return Control.objects.get(ref_id=ref_id)


def mapped(case, *, active=True):
    return set(
        CaseControlMapping.objects.filter(case=case, is_active=active).values_list(
            "control__ref_id", flat=True
        )
    )


def mapping_row(case, ref_id):
    return CaseControlMapping.objects.get(case=case, control__ref_id=ref_id)


# --- The rules, when a case opens ---------------------------------------------------------------------------


def test_opening_a_secret_exposure_case_maps_its_default_controls(rules, open_case, fresh_identity):
    case = open_case(identities=[fresh_identity])

    assert mapped(case) == SECRET_EXPOSURE_ALWAYS


@pytest.mark.parametrize(
    ("rotated_days_ago", "maps_nhi7"), [(None, True), (120, True), (91, True), (89, False), (7, False)]
)
def test_nhi7_is_mapped_only_when_the_linked_identity_is_long_lived(
    rules, open_case, payments, rotated_days_ago, maps_nhi7
):
    rotated = None if rotated_days_ago is None else timezone.now() - timedelta(days=rotated_days_ago)
    identity = NonHumanIdentityFactory.create(owner_team=payments, last_rotated_at=rotated)

    case = open_case(identities=[identity])

    assert ("NHI7" in mapped(case)) is maps_nhi7


def test_rule_mappings_carry_the_rules_rationale(rules, open_case, fresh_identity):
    case = open_case(identities=[fresh_identity])

    row = mapping_row(case, "NHI2")
    assert (row.source, row.rationale) == (MappingSource.RULE, row.rule.rationale)


# --- The rules, when a case changes -------------------------------------------------------------------------


def test_changing_the_kind_maps_the_new_kinds_controls(rules, open_case, analyst, fresh_identity):
    case = open_case(identities=[fresh_identity])

    services.case_update(actor=analyst, case_id=case.pk, changes={"kind": CaseKind.ALERT_TRIAGE})

    assert mapped(case) == ALERT_TRIAGE


def test_changing_the_kind_deactivates_the_old_rule_mappings_without_deleting_them(
    rules, open_case, analyst, fresh_identity
):
    case = open_case(identities=[fresh_identity])

    services.case_update(actor=analyst, case_id=case.pk, changes={"kind": CaseKind.ALERT_TRIAGE})

    assert mapped(case, active=False) == SECRET_EXPOSURE_ALWAYS - ALERT_TRIAGE


def test_changing_the_kind_back_reactivates_the_same_rows(rules, open_case, analyst, fresh_identity):
    case = open_case(identities=[fresh_identity])
    first_id = mapping_row(case, "NHI2").pk

    services.case_update(actor=analyst, case_id=case.pk, changes={"kind": CaseKind.ALERT_TRIAGE})
    services.case_update(actor=analyst, case_id=case.pk, changes={"kind": CaseKind.SECRET_EXPOSURE})

    row = mapping_row(case, "NHI2")
    assert (row.pk, row.is_active) == (first_id, True)


def test_linking_a_long_lived_identity_maps_nhi7(rules, open_case, analyst, fresh_identity, stale_identity):
    case = open_case(identities=[fresh_identity])

    services.case_link_identity(actor=analyst, case_id=case.pk, nhi_id=stale_identity.pk)

    assert "NHI7" in mapped(case)


def test_unlinking_the_long_lived_identity_deactivates_nhi7(rules, open_case, analyst, stale_identity):
    case = open_case(identities=[stale_identity])

    services.case_unlink_identity(actor=analyst, case_id=case.pk, nhi_id=stale_identity.pk)

    assert "NHI7" in mapped(case, active=False)


# --- By hand ------------------------------------------------------------------------------------------------


def test_a_mapping_added_by_hand_is_active_with_its_rationale(rules, open_case, analyst, fresh_identity):
    case = open_case(identities=[fresh_identity])

    mapping.case_mapping_add(
        actor=analyst, case_id=case.pk, control_id=control("NHI10").pk, rationale="the key was misused too"
    )

    row = mapping_row(case, "NHI10")
    assert (row.is_active, row.source, row.rationale) == (
        True,
        MappingSource.MANUAL,
        "the key was misused too",
    )


def test_a_mapping_added_by_hand_stays_when_the_kind_changes(rules, open_case, analyst, fresh_identity):
    case = open_case(identities=[fresh_identity])
    mapping.case_mapping_add(
        actor=analyst, case_id=case.pk, control_id=control("NHI10").pk, rationale="the key was misused too"
    )

    services.case_update(actor=analyst, case_id=case.pk, changes={"kind": CaseKind.ALERT_TRIAGE})

    assert "NHI10" in mapped(case)


def test_a_mapping_removed_by_hand_is_not_brought_back_by_the_rules(
    rules, open_case, analyst, fresh_identity
):
    case = open_case(identities=[fresh_identity])
    mapping.case_mapping_remove(
        actor=analyst, case_id=case.pk, control_id=control("NHI2").pk, rationale="no secret left the vault"
    )

    services.case_update(actor=analyst, case_id=case.pk, changes={"kind": CaseKind.ALERT_TRIAGE})
    services.case_update(actor=analyst, case_id=case.pk, changes={"kind": CaseKind.SECRET_EXPOSURE})

    assert "NHI2" in mapped(case, active=False)


def test_adding_a_mapping_already_active_is_refused(rules, open_case, analyst, fresh_identity):
    case = open_case(identities=[fresh_identity])

    with pytest.raises(CaseWorkflowError, match="already mapped to NHI2"):
        mapping.case_mapping_add(actor=analyst, case_id=case.pk, control_id=control("NHI2").pk, rationale="x")


@pytest.mark.parametrize("call", [mapping.case_mapping_add, mapping.case_mapping_remove])
def test_a_hand_change_without_a_rationale_is_refused_naming_the_field(
    rules, open_case, analyst, fresh_identity, call
):
    case = open_case(identities=[fresh_identity])
    before = set(CaseControlMapping.objects.filter(case=case).values_list("control_id", "is_active"))

    with pytest.raises(ValidationError) as refused:
        call(actor=analyst, case_id=case.pk, control_id=control("NHI2").pk, rationale="   ")

    assert list(refused.value.error_dict) == ["rationale"]
    assert set(CaseControlMapping.objects.filter(case=case).values_list("control_id", "is_active")) == before


@pytest.mark.parametrize("name", ["auditor", "owner", "outsider"])
@pytest.mark.parametrize(
    ("call", "ref_id"), [(mapping.case_mapping_add, "NHI10"), (mapping.case_mapping_remove, "NHI2")]
)
def test_people_without_map_case_cannot_change_mappings(
    rules, open_case, fresh_identity, persona, name, call, ref_id
):
    case = open_case(identities=[fresh_identity])

    with pytest.raises(PermissionDenied, match=r"cases\.map_case"):
        call(actor=persona(name), case_id=case.pk, control_id=control(ref_id).pk, rationale="because")


# --- History ------------------------------------------------------------------------------------------------


def last_history(case, ref_id):
    return CaseControlMapping.history.filter(case_id=case.pk, control__ref_id=ref_id).latest("history_id")


def test_a_rule_mapping_is_recorded_with_the_actor_and_the_rule(rules, open_case, analyst, fresh_identity):
    case = open_case(identities=[fresh_identity])

    entry = last_history(case, "NHI2")
    rule = MappingRule.objects.get(case_kind=CaseKind.SECRET_EXPOSURE, control__ref_id="NHI2")
    assert (entry.history_type, entry.history_user, entry.history_change_reason) == (
        "+",
        analyst,
        f"mapped by rule #{rule.pk}",
    )


def test_a_deactivation_by_the_rules_is_recorded_with_the_actor_and_the_reason(
    rules, open_case, analyst, fresh_identity
):
    case = open_case(identities=[fresh_identity])

    services.case_update(actor=analyst, case_id=case.pk, changes={"kind": CaseKind.ALERT_TRIAGE})

    entry = last_history(case, "NHI2")
    assert (entry.is_active, entry.history_user, entry.history_change_reason) == (
        False,
        analyst,
        "no rule applies any more",
    )


def test_a_hand_addition_is_recorded_with_the_actor_and_the_rationale(
    rules, open_case, analyst, fresh_identity
):
    case = open_case(identities=[fresh_identity])

    mapping.case_mapping_add(
        actor=analyst, case_id=case.pk, control_id=control("NHI10").pk, rationale="misused"
    )

    entry = last_history(case, "NHI10")
    assert (entry.history_user, entry.history_change_reason) == (analyst, "added by hand: misused")


def test_a_hand_removal_is_recorded_with_the_actor_and_the_rationale(
    rules, open_case, analyst, fresh_identity
):
    case = open_case(identities=[fresh_identity])

    mapping.case_mapping_remove(
        actor=analyst, case_id=case.pk, control_id=control("NHI2").pk, rationale="vault only"
    )

    entry = last_history(case, "NHI2")
    assert (entry.is_active, entry.history_user, entry.history_change_reason) == (
        False,
        analyst,
        "removed by hand: vault only",
    )


# --- Loading the rule set -----------------------------------------------------------------------------------


def test_the_shipped_rules_load(rules):
    shipped = json.loads(mapping.DEFAULT_RULES.read_text())["rules"]

    assert rules == len(shipped) == MappingRule.objects.count()


def test_loading_the_rules_again_creates_nothing(rules):
    assert mapping.mapping_rules_load() == 0


def test_loading_the_rules_again_keeps_an_edited_rationale(rules, analyst):
    rule = MappingRule.objects.get(case_kind=CaseKind.SECRET_EXPOSURE, control__ref_id="NHI2")
    mapping.mapping_rule_update(actor=analyst, rule_id=rule.pk, changes={"rationale": "Our own wording."})

    mapping.mapping_rules_load()

    rule.refresh_from_db()
    assert rule.rationale == "Our own wording."


GOOD_ENTRY = {
    "case_kind": "secret_exposure",
    "condition": "always",
    "framework": "owasp-nhi-top10-2025",
    "control": "NHI2",
    "rationale": "A leaked secret lets anyone act as the identity.",
}


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"condition": "on_tuesdays"}, "unknown condition 'on_tuesdays'"),
        ({"case_kind": "haunting"}, "unknown case kind 'haunting'"),
        ({"control": "NHI99"}, "no control 'NHI99'"),
        ({"rationale": ""}, "the rationale must be a non-empty string"),
        ({"framework": None, "control": None}, "no control None"),
    ],
)
def test_a_malformed_rule_is_refused_naming_the_entry(rules, tmp_path, broken, message):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [GOOD_ENTRY, {**GOOD_ENTRY, **broken}]}))

    with pytest.raises(ValidationError, match=rf"rules\.json: rules\[1\].*{message}"):
        mapping.mapping_rules_load(path=path)


def test_a_rule_lacking_a_field_is_refused_naming_the_entry_and_the_field(rules, tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{k: v for k, v in GOOD_ENTRY.items() if k != "condition"}]}))

    with pytest.raises(ValidationError, match=r"rules\[0\] lacks field\(s\): condition"):
        mapping.mapping_rules_load(path=path)


def test_reloading_the_catalogs_keeps_the_mappings(rules, open_case, fresh_identity):
    case = open_case(identities=[fresh_identity])
    before = set(CaseControlMapping.objects.filter(case=case).values_list("pk", "control_id", "is_active"))

    call_command("load_catalogs", stdout=StringIO())

    assert (
        set(CaseControlMapping.objects.filter(case=case).values_list("pk", "control_id", "is_active"))
        == before
    )


# --- Editing the rules --------------------------------------------------------------------------------------


def test_a_new_rule_maps_cases_opened_afterwards(rules, open_case, analyst, fresh_identity):
    mapping.mapping_rule_create(
        actor=analyst,
        case_kind=CaseKind.SECRET_EXPOSURE,
        condition=MappingCondition.ALWAYS,
        control=control("NHI10"),
        rationale="Leaked secrets are often misused.",
    )

    assert "NHI10" in mapped(open_case(identities=[fresh_identity]))


def test_a_retired_rule_no_longer_maps_new_cases(rules, open_case, analyst, fresh_identity):
    rule = MappingRule.objects.get(case_kind=CaseKind.SECRET_EXPOSURE, control__ref_id="NHI2")

    mapping.mapping_rule_update(actor=analyst, rule_id=rule.pk, changes={"is_active": False})

    assert "NHI2" not in mapped(open_case(identities=[fresh_identity]))


def test_a_rule_edit_is_recorded_with_the_actor(rules, analyst):
    rule = MappingRule.objects.get(case_kind=CaseKind.SECRET_EXPOSURE, control__ref_id="NHI2")

    mapping.mapping_rule_update(actor=analyst, rule_id=rule.pk, changes={"is_active": False})

    entry = rule.history.latest("history_id")
    assert (entry.is_active, entry.history_user, entry.history_change_reason) == (
        False,
        analyst,
        "edited is_active",
    )


def test_a_rule_without_a_rationale_is_refused(rules, analyst):
    with pytest.raises(ValidationError) as refused:
        mapping.mapping_rule_create(
            actor=analyst,
            case_kind="",
            condition=MappingCondition.ALWAYS,
            control=control("NHI10"),
            rationale=" ",
        )

    assert "rationale" in refused.value.error_dict


def test_a_duplicate_rule_is_refused(rules, analyst):
    with pytest.raises(ValidationError):
        mapping.mapping_rule_create(
            actor=analyst,
            case_kind=CaseKind.SECRET_EXPOSURE,
            condition=MappingCondition.ALWAYS,
            control=control("NHI2"),
            rationale="again",
        )


@pytest.mark.parametrize("name", ["auditor", "owner", "outsider"])
def test_people_other_than_the_analyst_cannot_add_rules(rules, persona, name):
    with pytest.raises(PermissionDenied, match=r"cases\.add_mappingrule"):
        mapping.mapping_rule_create(
            actor=persona(name), case_kind="", condition="always", control=control("NHI10"), rationale="x"
        )


@pytest.mark.parametrize("name", ["auditor", "owner", "outsider"])
def test_people_other_than_the_analyst_cannot_change_rules(rules, persona, name):
    rule = MappingRule.objects.earliest("pk")

    with pytest.raises(PermissionDenied, match=r"cases\.change_mappingrule"):
        mapping.mapping_rule_update(actor=persona(name), rule_id=rule.pk, changes={"is_active": False})


def test_a_rule_field_outside_the_editable_ones_is_refused(rules, analyst):
    rule = MappingRule.objects.earliest("pk")

    with pytest.raises(ValidationError) as refused:
        mapping.mapping_rule_update(actor=analyst, rule_id=rule.pk, changes={"id": 999})

    assert list(refused.value.error_dict) == ["id"]
