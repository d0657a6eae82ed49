"""Bulk INSERTs of plain rows, with their simple-history rows, for the import's hot path.

`bulk_create` spends most of a 100,000-finding import preparing values field by field; the import's
values are already plain strings, numbers, booleans and datetimes (adapted once by `db_datetime`), so
they go to the driver as they are: executemany on SQLite, COPY on PostgreSQL, in the model's column
order, every other column at its default. The history rows are what simple-history's
`bulk_history_create` would write: one "+" row per new row.
"""

from __future__ import annotations

import operator
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


def db_datetime(value: datetime | None) -> Any:
    """A datetime as the driver takes it (SQLite: text in UTC); rows handed to the inserters hold these."""
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


class RowInserter:
    """INSERTs for one model, from rows of database-ready values; missing columns take the field default."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        columns = _columns(model)
        fields = {field.attname: field for field in model._meta.concrete_fields}
        # get_default() is also right without a default: "" for strings, None for nullable fields.
        self.defaults = {attname: fields[attname].get_default() for attname, _ in columns}
        self.defaults = {
            name: db_datetime(value) if isinstance(value, datetime) else value
            for name, value in self.defaults.items()
        }
        # Row dicts merged over the defaults and read in column order, both in C: the loop is per row, not
        # per value, 280,000 rows an import.
        self.values_of = operator.itemgetter(*[attname for attname, _ in columns])
        quote = connection.ops.quote_name
        names = ", ".join(quote(column) for _, column in columns)
        table = quote(model._meta.db_table)
        self.sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        self.copy_sql = f"COPY {table} ({names}) FROM STDIN"

    def insert(self, rows: Iterable[Row]) -> int:
        defaults, values_of = self.defaults, self.values_of
        values = [values_of({**defaults, **row}) for row in rows]
        if not values:
            return 0
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # An INSERT per row costs PostgreSQL a statement each (60 s an import); COPY streams them.
                with cursor.cursor.copy(self.copy_sql) as copy:
                    for value in values:
                        copy.write_row(value)
            else:
                cursor.executemany(self.sql, values)
        return len(values)


class HistoryInserter:
    """The "+" history rows of newly inserted rows, attributed to one user with one reason and date."""

    def __init__(self, model: type[Model]) -> None:
        self.inserter = RowInserter(model.history.model)  # type: ignore[attr-defined]

    def insert(self, rows: Sequence[Row], *, user_id: int, reason: str, at: Any) -> int:
        """`at` as db_datetime() gives it. Columns the history does not keep are simply not read."""
        stamp = {
            "history_date": at,
            "history_change_reason": reason,
            "history_type": "+",
            "history_user_id": user_id,
        }
        return self.inserter.insert({**row, **stamp} for row in rows)


def findings_at(places: set[tuple[int, str]]) -> list[tuple[Any, ...]]:
    """(id, exposure_id, location_key, commit, resolved_at_source, source_state) of the findings at these
    (exposure, location) pairs, one probe of their unique index per pair.

    `exposure IN (...) AND location IN (...)` and `(exposure, location) IN (VALUES ...)` make SQLite scan
    the whole index; joined to a VALUES list it probes. PostgreSQL gets the pairs as two arrays.
    """
    if not places:
        return []
    table = connection.ops.quote_name(Finding._meta.db_table)
    columns = 'f.id, f.exposure_id, f.location_key, f."commit", f.resolved_at_source, f.source_state'
    if connection.vendor == "postgresql":
        exposure_ids, location_keys = zip(*places, strict=True)
        # LIMIT 1 keeps the subquery a per-pair index probe: joined plainly, stale statistics in the
        # middle of an import make PostgreSQL hash the whole table for every batch.
        sql = (
            f"SELECT {columns} FROM unnest(%s::bigint[], %s::varchar[]) AS wanted (exposure, location) "
            f"CROSS JOIN LATERAL (SELECT * FROM {table} inner_f WHERE inner_f.exposure_id = wanted.exposure "
            "AND inner_f.location_key = wanted.location LIMIT 1) f"
        )
        params: list[Any] = [list(exposure_ids), list(location_keys)]
    else:
        pairs = ", ".join(["(%s, %s)"] * len(places))
        sql = (
            f"SELECT {columns} FROM (VALUES {pairs}) AS wanted "
            f"INNER JOIN {table} f ON f.exposure_id = wanted.column1 AND f.location_key = wanted.column2"
        )
        params = [value for place in places for value in place]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
