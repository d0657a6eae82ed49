"""Every error answer has one of the documented shapes (portal/api/schema.py)."""

from typing import Any

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django_filters import FilterSet
from rest_framework.exceptions import ParseError
from rest_framework.exceptions import ValidationError as DrfValidationError

from cases.errors import CaseWorkflowError, TransitionConflict, TransitionRefused
from nhi_inventory.models import NonHumanIdentity
from portal.api.errors import flat_errors, portal_exception_handler
from portal.api.filters import IdFilter, UtcDateTimeField, UtcDateTimeFromToRangeFilter
from portal.api.schema import error_responses


def answer(error: Exception) -> tuple[int, Any]:
    response = portal_exception_handler(error, {})
    assert response is not None
    return response.status_code, response.data


def test_nested_field_errors_are_flattened_with_dots() -> None:
    detail = {
        "identities": {0: ["Unknown identity."]},
        "actions": [{}, {"title": ["Required."]}],
        "x": ["Bad."],
    }
    assert flat_errors(detail) == {
        "identities.0": ["Unknown identity."],
        "actions.1.title": ["Required."],
        "x": ["Bad."],
    }


def test_a_message_without_a_field_is_a_non_field_error() -> None:
    assert answer(DrfValidationError("Nope.")) == (400, {"non_field_errors": ["Nope."]})


def test_unreadable_json_is_a_400_with_the_field_errors_shape() -> None:
    status, body = answer(ParseError("JSON parse error"))
    assert status == 400
    assert body == {"non_field_errors": ["JSON parse error"]}


def test_a_services_validation_error_names_its_fields() -> None:
    assert answer(ValidationError({"reason": "A reason is required.", "__all__": "And more."})) == (
        400,
        {"reason": ["A reason is required."], "non_field_errors": ["And more."]},
    )


def test_a_guard_refusal_lists_its_refusals() -> None:
    status, body = answer(TransitionRefused("verify", ["No evidence yet.", "An action item is open."]))
    assert status == 400
    assert body == {
        "detail": "No evidence yet. An action item is open.",
        "refusals": ["No evidence yet.", "An action item is open."],
        "transition": "verify",
    }


@pytest.mark.parametrize(
    "error", [TransitionConflict("Moved first."), CaseWorkflowError("CASE-000001 is already mapped to NHI1.")]
)
def test_a_state_that_no_longer_allows_it_is_a_conflict(error: Exception) -> None:
    assert answer(error) == (409, {"detail": str(error)})


def test_every_documented_operation_has_401_and_429() -> None:
    assert sorted(error_responses(404)) == [401, 404, 429]
    assert sorted(error_responses(400, 403, transition=True)) == [400, 401, 403, 429]


def test_an_id_filter_refuses_ids_beyond_64_bits() -> None:
    field = IdFilter().field
    assert field.clean("42") == 42
    with pytest.raises(forms.ValidationError):
        field.clean(str(2**64))


def test_a_date_time_filter_brings_offsets_to_utc_and_refuses_overflow() -> None:
    field = UtcDateTimeField()
    # PostgreSQL refuses an offset beyond ±15:59, Python does not.
    assert field.clean("0429-06-27T22:16:26+17:03").isoformat() == "0429-06-27T05:13:26+00:00"
    with pytest.raises(forms.ValidationError, match="out of range"):
        field.clean("0001-01-01T00:00:00+05:00")


def test_a_date_time_range_filter_brings_both_ends_to_utc() -> None:
    class Filters(FilterSet):
        created = UtcDateTimeFromToRangeFilter(field_name="created_at")

        class Meta:
            model = NonHumanIdentity
            fields = ("created",)

    filters = Filters(
        {"created_after": "2026-01-01T00:00:00+17:00", "created_before": "0001-01-01T00:00:00+05:00"},
        queryset=NonHumanIdentity.objects.all(),
    )
    assert not filters.is_valid()
    assert "created" in filters.errors
    filters = Filters({"created_after": "2026-01-01T20:00:00+17:00"}, queryset=NonHumanIdentity.objects.all())
    assert filters.is_valid()
    assert filters.form.cleaned_data["created"].start.isoformat() == "2026-01-01T03:00:00+00:00"
