"""`/api/v1/attribution-rules/` and `/api/v1/promotion-rules/`: staff read them, analysts write them."""

from typing import Any

import pytest

from findings.models import AttributionRule, PromotionCondition, PromotionRule
from tests.findings.conftest import MakeExposure

pytestmark = pytest.mark.django_db

ATTRIBUTION = "/api/v1/attribution-rules/"
PROMOTION = "/api/v1/promotion-rules/"
STAFF = ["analyst", "approver", "auditor"]
NOT_ANALYSTS = ["approver", "auditor", "owner", "outsider"]


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def attribution_rule(payments_identity: Any) -> AttributionRule:
    return AttributionRule.objects.create(
        repository_pattern="github.com/acme/payments*", nhi=payments_identity
    )


@pytest.fixture
def promotion_rule(role_groups: None) -> PromotionRule:
    return PromotionRule.objects.create(condition=PromotionCondition.VALID, position=5)


# --- Attribution rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STAFF)
def test_staff_read_attribution_rules(
    api: Any, persona: str, request: pytest.FixtureRequest, attribution_rule: AttributionRule
) -> None:
    client = api(request.getfixturevalue(persona))

    assert ids(client.get(ATTRIBUTION)) == {attribution_rule.pk}
    body = client.get(f"{ATTRIBUTION}{attribution_rule.pk}/").json()
    assert (body["nhi"], body["nhi_name"]) == (attribution_rule.nhi_id, "payments-api-bot")


@pytest.mark.parametrize("persona", ["owner", "outsider"])
def test_others_may_not_read_attribution_rules(
    api: Any, persona: str, request: pytest.FixtureRequest, attribution_rule: AttributionRule
) -> None:
    client = api(request.getfixturevalue(persona))

    assert client.get(ATTRIBUTION).status_code == 403
    assert client.get(f"{ATTRIBUTION}{attribution_rule.pk}/").status_code == 403


def test_an_anonymous_caller_may_not_read_attribution_rules(
    api: Any, attribution_rule: AttributionRule
) -> None:
    assert api(None).get(ATTRIBUTION).status_code == 401


def test_an_analyst_adds_an_attribution_rule_and_it_takes_the_waiting_exposures(
    api: Any, analyst: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    waiting = make_exposure(None)  # its finding is in github.com/acme/payments (the factory's repository)

    response = api(analyst).post(
        ATTRIBUTION,
        {
            "repository_pattern": "github.com/acme/payments*",
            "nhi": payments_identity.pk,
            "note": "payments repo",
        },
    )

    assert response.status_code == 201, response.content
    rule = AttributionRule.objects.get(pk=response.json()["id"])
    assert (rule.nhi, rule.note, rule.position) == (payments_identity, "payments repo", 100)
    assert rule.history.get().history_user == analyst
    waiting.refresh_from_db()
    assert (waiting.nhi, waiting.attribution_rule) == (payments_identity, rule)


def test_an_analyst_changes_an_attribution_rule(
    api: Any, analyst: Any, attribution_rule: AttributionRule
) -> None:
    response = api(analyst).patch(f"{ATTRIBUTION}{attribution_rule.pk}/", {"is_active": False})

    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is False
    attribution_rule.refresh_from_db()
    assert attribution_rule.is_active is False
    assert attribution_rule.history.latest().history_change_reason == "changed: is_active"


def test_an_analyst_replaces_an_attribution_rule(
    api: Any, analyst: Any, attribution_rule: AttributionRule, platform_identity: Any
) -> None:
    response = api(analyst).put(
        f"{ATTRIBUTION}{attribution_rule.pk}/",
        {"path_pattern": "ci/*", "nhi": platform_identity.pk, "position": 3, "is_active": True, "note": ""},
    )

    assert response.status_code == 200, response.content
    attribution_rule.refresh_from_db()
    assert (attribution_rule.path_pattern, attribution_rule.nhi, attribution_rule.position) == (
        "ci/*",
        platform_identity,
        3,
    )


@pytest.mark.parametrize("persona", NOT_ANALYSTS)
def test_only_analysts_write_attribution_rules(
    api: Any,
    persona: str,
    request: pytest.FixtureRequest,
    attribution_rule: AttributionRule,
    payments_identity: Any,
) -> None:
    client = api(request.getfixturevalue(persona))

    created = client.post(ATTRIBUTION, {"path_pattern": "x/*", "nhi": payments_identity.pk})
    changed = client.patch(f"{ATTRIBUTION}{attribution_rule.pk}/", {"is_active": False})

    assert (created.status_code, changed.status_code) == (403, 403)
    assert AttributionRule.objects.count() == 1
    attribution_rule.refresh_from_db()
    assert attribution_rule.is_active is True


def test_an_anonymous_caller_may_not_write_attribution_rules(api: Any, payments_identity: Any) -> None:
    response = api(None).post(ATTRIBUTION, {"path_pattern": "x/*", "nhi": payments_identity.pk})

    assert response.status_code == 401
    assert AttributionRule.objects.count() == 0


def test_a_rule_without_any_pattern_is_refused_and_nothing_is_written(
    api: Any, analyst: Any, payments_identity: Any
) -> None:
    response = api(analyst).post(ATTRIBUTION, {"nhi": payments_identity.pk})

    assert response.status_code == 400
    assert "at least one pattern" in response.json()["non_field_errors"][0]
    assert AttributionRule.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "field"), [({"path_pattern": "x/*"}, "nhi"), ({"path_pattern": "x/*", "nhi": 999_999}, "nhi")]
)
def test_a_rule_without_an_identity_names_the_field(
    api: Any, analyst: Any, data: dict[str, Any], field: str
) -> None:
    response = api(analyst).post(ATTRIBUTION, data)

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert AttributionRule.objects.count() == 0


def test_rules_are_retired_not_deleted(api: Any, analyst: Any, attribution_rule: AttributionRule) -> None:
    assert api(analyst).delete(f"{ATTRIBUTION}{attribution_rule.pk}/").status_code == 405
    assert AttributionRule.objects.count() == 1


def test_attribution_rules_filter_by_identity_and_activity(
    api: Any, analyst: Any, attribution_rule: AttributionRule, platform_identity: Any
) -> None:
    retired = AttributionRule.objects.create(path_pattern="ci/*", nhi=platform_identity, is_active=False)
    client = api(analyst)

    assert ids(client.get(ATTRIBUTION, {"nhi": platform_identity.pk})) == {retired.pk}
    assert ids(client.get(ATTRIBUTION, {"is_active": "true"})) == {attribution_rule.pk}


@pytest.mark.parametrize("count", [2, 12])
def test_the_attribution_rule_list_costs_the_same_whatever_its_length(
    api: Any, analyst: Any, count: int, payments_identity: Any, django_assert_num_queries: Any
) -> None:
    for n in range(count):
        AttributionRule.objects.create(path_pattern=f"dir{n}/*", nhi=payments_identity)
    client = api(analyst)
    client.get(ATTRIBUTION)

    # Session, user, their permissions (user and groups), the page of rules with their identities.
    with django_assert_num_queries(5):
        response = client.get(ATTRIBUTION)
    assert len(response.json()["results"]) == count


# --- Promotion rules ----------------------------------------------------------------------------------------


def existing_promotion_rules() -> set[int]:
    """The default rules (a data migration) and any made by the test."""
    return set(PromotionRule.objects.values_list("pk", flat=True))


@pytest.mark.parametrize("persona", STAFF)
def test_staff_read_promotion_rules(
    api: Any, persona: str, request: pytest.FixtureRequest, promotion_rule: PromotionRule
) -> None:
    client = api(request.getfixturevalue(persona))

    assert ids(client.get(PROMOTION, {"page_size": 500})) == existing_promotion_rules()
    assert client.get(f"{PROMOTION}{promotion_rule.pk}/").json()["condition"] == "valid"


@pytest.mark.parametrize("persona", ["owner", "outsider"])
def test_others_may_not_read_promotion_rules(
    api: Any, persona: str, request: pytest.FixtureRequest, promotion_rule: PromotionRule
) -> None:
    client = api(request.getfixturevalue(persona))

    assert client.get(PROMOTION).status_code == 403
    assert client.get(f"{PROMOTION}{promotion_rule.pk}/").status_code == 403


def test_an_anonymous_caller_may_not_read_promotion_rules(api: Any, promotion_rule: PromotionRule) -> None:
    assert api(None).get(PROMOTION).status_code == 401


def test_an_analyst_adds_a_promotion_rule(api: Any, analyst: Any) -> None:
    before = existing_promotion_rules()

    response = api(analyst).post(
        PROMOTION, {"condition": "recurring", "min_locations": 5, "severity": 4, "requires_attribution": True}
    )

    assert response.status_code == 201, response.content
    rule = PromotionRule.objects.get(pk=response.json()["id"])
    assert rule.pk not in before
    assert (rule.condition, rule.min_locations, rule.severity, rule.requires_attribution) == (
        "recurring",
        5,
        4,
        True,
    )
    assert rule.history.get().history_user == analyst


def test_an_analyst_changes_a_promotion_rule(api: Any, analyst: Any, promotion_rule: PromotionRule) -> None:
    response = api(analyst).patch(f"{PROMOTION}{promotion_rule.pk}/", {"severity": 2, "position": 1})

    assert response.status_code == 200, response.content
    promotion_rule.refresh_from_db()
    assert (promotion_rule.severity, promotion_rule.position) == (2, 1)
    assert promotion_rule.history.latest().history_change_reason == "changed: position, severity"


@pytest.mark.parametrize("persona", NOT_ANALYSTS)
def test_only_analysts_write_promotion_rules(
    api: Any, persona: str, request: pytest.FixtureRequest, promotion_rule: PromotionRule
) -> None:
    before = existing_promotion_rules()
    client = api(request.getfixturevalue(persona))

    created = client.post(PROMOTION, {"condition": "valid"})
    changed = client.patch(f"{PROMOTION}{promotion_rule.pk}/", {"is_active": False})

    assert (created.status_code, changed.status_code) == (403, 403)
    assert existing_promotion_rules() == before
    promotion_rule.refresh_from_db()
    assert promotion_rule.is_active is True


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "condition"),
        ({"condition": "sometimes"}, "condition"),
        ({"condition": "valid", "severity": 9}, "severity"),
    ],
)
def test_an_invalid_promotion_rule_names_the_field(
    api: Any, analyst: Any, data: dict[str, Any], field: str
) -> None:
    before = existing_promotion_rules()

    response = api(analyst).post(PROMOTION, data)

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert existing_promotion_rules() == before


def test_promotion_rules_filter_by_condition(api: Any, analyst: Any, promotion_rule: PromotionRule) -> None:
    matching = set(PromotionRule.objects.filter(condition="valid").values_list("pk", flat=True))

    assert ids(api(analyst).get(PROMOTION, {"condition": "valid"})) == matching


@pytest.mark.parametrize("count", [2, 12])
def test_the_promotion_rule_list_costs_the_same_whatever_its_length(
    api: Any, analyst: Any, count: int, django_assert_num_queries: Any
) -> None:
    PromotionRule.objects.all().delete()
    for position in range(count):
        PromotionRule.objects.create(condition=PromotionCondition.VALID, position=position)
    client = api(analyst)
    client.get(PROMOTION)

    # Session, user, their permissions (user and groups), the page of rules.
    with django_assert_num_queries(5):
        response = client.get(PROMOTION)
    assert len(response.json()["results"]) == count
