"""Filters shared by the endpoints' filter sets."""

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.utils import timezone
from django_filters.fields import IsoDateTimeField, IsoDateTimeRangeField, RangeField
from drf_spectacular.utils import extend_schema_field

# Ids beyond a 64-bit integer are refused as input (a 400 naming the filter) rather than sent to the database.
MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.Filter):
    """A row's id. It is not checked against the table: an unknown or hidden id gives an empty list, so a
    filter cannot tell whether a row exists."""

    field_class = forms.IntegerField  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time brought to UTC: PostgreSQL refuses offsets beyond ±15:59 (`+17:03` is valid ISO
    8601 and Python), and a year-1 date shifted by its offset leaves Python's range; both are a 400, not a
    500."""

    def to_python(self, value: Any) -> datetime | None:
        result = super().to_python(value)
        if result is None or timezone.is_naive(result):
            return result
        try:
            return result.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("The date-time is out of range.", code="overflow") from None


class UtcDateTimeRangeField(IsoDateTimeRangeField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # RangeField's own constructor, with UTC fields in place of the plain ISO ones.
        RangeField.__init__(self, (UtcDateTimeField(), UtcDateTimeField()), *args, **kwargs)


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """Use instead of (Iso)DateTimeFilter (see UtcDateTimeField)."""

    field_class = UtcDateTimeField


class UtcDateTimeFromToRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """Use instead of IsoDateTimeFromToRangeFilter (`<name>_after`, `<name>_before`; see UtcDateTimeField)."""

    field_class = UtcDateTimeRangeField
