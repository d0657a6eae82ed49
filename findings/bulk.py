"""Multi-row INSERTs of plain rows, with their simple-history rows, for the import's hot path.

`bulk_create` spends most of a 100,000-finding import preparing values field by field; the import's
values are already plain strings, numbers, booleans and datetimes, so they go to the driver as they are
(executemany), in the models' own column order, with every other column at its model default. The
history rows are what simple-history's `bulk_history_create` would write: one "+" row per new row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model

from findings.models import Finding

Row = Mapping[str, Any]


def _columns(model: type[Model]) -> list[tuple[str, str]]:
    """(attname, column) of every concrete field but the auto primary key."""
    return [
        (field.attname, field.column)
        for field in model._meta.concrete_fields
        if not (field.primary_key and field.get_internal_type() in ("AutoField", "BigAutoField"))
    ]


class RowInserter:
    """INSERTs for one model; unspecified columns take the field's default."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.columns = _columns(model)
        fields = {field.attname: field for field in model._meta.concrete_fields}
        adapt = connection.ops.adapt_datetimefield_value
        self.defaults = []
        for attname, _ in self.columns:
            # get_default() is also right without a default: "" for strings, None for nullable fields.
            default = fields[attname].get_default()
            self.defaults.append((attname, adapt(default) if isinstance(default, datetime) else default))
        self.datetime_positions = [
            position
            for position, (attname, _) in enumerate(self.columns)
            if fields[attname].get_internal_type() == "DateTimeField"
        ]
        quote = connection.ops.quote_name
        names = ", ".join(quote(column) for _, column in self.columns)
        self.sql = (
            f"INSERT INTO {quote(model._meta.db_table)} ({names}) "
            f"VALUES ({', '.join(['%s'] * len(self.columns))})"
        )

    def insert(self, rows: Iterable[Row]) -> int:
        defaults, positions = self.defaults, self.datetime_positions
        adapt = connection.ops.adapt_datetimefield_value
        adapted: dict[datetime, Any] = {}  # an import stamps most rows with the same few datetimes
        values = []
        for row in rows:
            value = [row.get(name, default) for name, default in defaults]
            for position in positions:
                moment = value[position]
                if isinstance(moment, datetime):
                    found = adapted.get(moment)
                    if found is None:
                        found = adapted[moment] = adapt(moment)
                    value[position] = found
            values.append(value)
        if values:
            with connection.cursor() as cursor:
                cursor.executemany(self.sql, values)
        return len(values)


class HistoryInserter:
    """The "+" history rows of newly inserted rows, attributed to one user with one reason and date."""

    def __init__(self, model: type[Model]) -> None:
        history_model = model.history.model  # type: ignore[attr-defined]
        self.inserter = RowInserter(history_model)
        self.tracked = [field.attname for field in history_model.tracked_fields]

    def insert(self, rows: Sequence[Row], *, user_id: int, reason: str, at: datetime) -> int:
        stamp = {
            "history_date": at,
            "history_change_reason": reason,
            "history_type": "+",
            "history_user_id": user_id,
        }
        # Fields a row leaves out take the historical model's defaults, the same as the row's own.
        return self.inserter.insert(
            {**{name: row[name] for name in self.tracked if name in row}, **stamp} for row in rows
        )


def findings_at(places: set[tuple[int, str]]) -> list[tuple[Any, ...]]:
    """(id, exposure_id, location_key, commit, resolved_at_source, source_state) of the findings at these
    (exposure, location) pairs, one probe of their unique index per pair.

    Joined to a VALUES list: `exposure IN (...) AND location IN (...)` and `(exposure, location) IN
    (VALUES ...)` both make SQLite scan the whole index.
    """
    if not places:
        return []
    table = connection.ops.quote_name(Finding._meta.db_table)
    pairs = ", ".join(["(%s, %s)"] * len(places))
    sql = (
        f'SELECT f.id, f.exposure_id, f.location_key, f."commit", f.resolved_at_source, f.source_state '
        f"FROM (VALUES {pairs}) AS wanted "
        f"INNER JOIN {table} f ON f.exposure_id = wanted.column1 AND f.location_key = wanted.column2"
    )
    params = [value for place in places for value in place]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
