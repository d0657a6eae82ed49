"""Bulk INSERTs of plain rows, with their simple-history rows, for the import's hot path.

`bulk_create` spends most of a 100,000-finding import preparing values field by field; the import's
values are already plain strings, numbers, booleans and datetimes (adapted once by `db_datetime`), so
they go to the driver as they are: executemany on SQLite, COPY on PostgreSQL, in the model's column
order, every other column at its default. The history rows are what simple-history's
`bulk_history_create` would write: one "+" row per new row.
"""

from __future__ import annotations

import json
import operator
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from django.db import connection
from django.db.models import Model, Q
from django.db.models.expressions import RawSQL

from findings.models import Exposure, Finding

Row = Mapping[str, Any]


def _columns(model: type[Model], *, with_id: bool = False) -> list[tuple[str, str]]:
    """(attname, column) of every concrete field but the auto primary key (unless the rows bring theirs)."""
    return [
        (field.attname, field.column)
        for field in model._meta.concrete_fields
        if with_id or not (field.primary_key and field.get_internal_type() in ("AutoField", "BigAutoField"))
    ]


def next_ids(model: type[Model], count: int) -> Sequence[int]:
    """`count` fresh primary keys for rows about to be inserted with them, so no query has to find the
    inserted rows' ids again afterwards.

    PostgreSQL: taken from the column's sequence (concurrent imports get distinct ones). SQLite: after
    both the largest id ever used (AUTOINCREMENT's sqlite_sequence) and the largest id present; the import
    holds SQLite's write lock from its first INSERT on, so nobody else can take them meanwhile.
    """
    if count <= 0:
        return []
    table = model._meta.db_table
    pk_column = model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [connection.ops.quote_name(table), pk_column, count],
            )
            return [row[0] for row in cursor.fetchall()]
        quote = connection.ops.quote_name
        cursor.execute(
            f"SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), "
            f"COALESCE((SELECT max({quote(pk_column)}) FROM {quote(table)}), 0))",
            [table],
        )
        last = cursor.fetchone()[0]
    return range(last + 1, last + 1 + count)


def add_to_counters(
    model: type[Model], increments: Sequence[tuple[int, ...]], counters: Sequence[str], **values: Any
) -> int:
    """counter += n for each (pk, n, ...) row (one n per counter), and set `values` on the same rows.
    Counters and values are named by their columns.

    One UPDATE for all the rows on PostgreSQL (the increments as arrays; an UPDATE per distinct increment
    costs a statement and a plan each), one prepared UPDATE run per row on SQLite (executemany).
    """
    if not increments:
        return 0
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk_column = quote(model._meta.pk.column)
    columns = [quote(name) for name in counters]
    fixed = [(quote(name), value) for name, value in values.items()]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            assignments = [f"{column} = t.{column} + v.c{n}" for n, column in enumerate(columns)]
            assignments += [f"{column} = %s" for column, _ in fixed]
            arrays = ", ".join(["%s::bigint[]"] + ["%s::integer[]"] * len(columns))
            names = ", ".join(["id"] + [f"c{n}" for n in range(len(columns))])
            by_column = [pg_array(column) for column in zip(*increments, strict=True)]
            # "= ANY" as well as the join: joined to the arrays alone, PostgreSQL hashes the whole table
            # (a sequential scan per batch); with it, it probes the primary key for each row.
            cursor.execute(
                f"UPDATE {table} AS t SET {', '.join(assignments)} "
                f"FROM unnest({arrays}) AS v ({names}) "
                f"WHERE t.{pk_column} = ANY(%s::bigint[]) AND t.{pk_column} = v.id",
                [value for _, value in fixed] + by_column + [by_column[0]],
            )
        else:
            # One UPDATE per distinct increment, its rows' ids as a JSON array (a re-import adds 1 to
            # nearly every row): a third faster than a prepared UPDATE run per row.
            by_increment: dict[tuple[int, ...], list[int]] = defaultdict(list)
            for pk, *counts in increments:
                by_increment[tuple(counts)].append(pk)
            assignments = [f"{column} = {column} + %s" for column in columns]
            assignments += [f"{column} = %s" for column, _ in fixed]
            tail = tuple(value for _, value in fixed)
            cursor.executemany(
                f"UPDATE {table} SET {', '.join(assignments)} "
                f"WHERE {pk_column} IN (SELECT value FROM json_each(%s))",
                [(*counts, *tail, json.dumps(ids)) for counts, ids in by_increment.items()],
            )
    return len(increments)


def pg_array(values: Sequence[int] | Sequence[str]) -> str:
    """A PostgreSQL array literal of ints or strings, for a `%s::<type>[]` parameter.

    psycopg binds a list on the client element by element, in Python (a regular expression per string to
    decide its quoting): some 2 s of a 100,000-finding import, whose arrays hold ids and hex digests.
    """
    if not values:
        return "{}"
    if isinstance(values[0], str):
        strings = cast(Sequence[str], values)
        joined = '","'.join(strings)
        # Quotes beyond the separators' own, or a backslash: not our hex digests, so escape each element.
        if joined.count('"') != 2 * (len(strings) - 1) or "\\" in joined:
            joined = '","'.join(value.replace("\\", "\\\\").replace('"', '\\"') for value in strings)
        return '{"' + joined + '"}'
    return "{" + ",".join(map(str, values)) + "}"


def one_of(lookup: str, values: Collection[int] | Collection[str]) -> Q:
    """`<lookup>__in=values`, passed as one array parameter on PostgreSQL.

    psycopg binds parameters on the client, parsing the query text each time: a query with 2,000
    placeholders costs it 40 ms, some 2 s of a 100,000-finding import's promotion and attribution steps.
    """
    listed = cast(Sequence[int] | Sequence[str], list(values))
    if connection.vendor == "postgresql" and listed:
        array = "bigint[]" if isinstance(listed[0], int) else "text[]"
        return Q(**{f"{lookup}__in": RawSQL(f"SELECT unnest(%s::{array})", (pg_array(listed),))})
    return Q(**{f"{lookup}__in": listed})


def db_datetime(value: datetime | None) -> Any:
    """A datetime as the driver takes it (SQLite: text in UTC); rows handed to the inserters hold these."""
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


class RowInserter:
    """INSERTs for one model, from rows of database-ready values; missing columns take the field default."""

    def __init__(self, model: type[Model], *, with_id: bool = False) -> None:
        self.model = model
        columns = _columns(model, with_id=with_id)
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
        # The columns' types named up front: psycopg then picks each value's dumper once, not per value.
        self.copy_types = [
            re.sub(r"\(.*\)", "", cast(str, fields[attname].db_type(connection))) for attname, _ in columns
        ]

    def insert(self, rows: Iterable[Row]) -> int:
        defaults, values_of = self.defaults, self.values_of
        values = [values_of({**defaults, **row}) for row in rows]
        if not values:
            return 0
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # An INSERT per row costs PostgreSQL a statement each (60 s an import); COPY streams them.
                with cursor.cursor.copy(self.copy_sql) as copy:
                    copy.set_types(self.copy_types)
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
        params: list[Any] = [pg_array(exposure_ids), pg_array(location_keys)]
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


def exposures_by(column: str, key_id: str, values: Iterable[str]) -> list[tuple[Any, ...]]:
    """(id, fingerprint, sha1_fingerprint, state, validity, remediated_at) of the exposures under this key
    whose `column` (fingerprint or sha1_fingerprint) is one of `values`.

    PostgreSQL gets the values as one array parameter (= ANY): the ORM's IN list of 2,000 parameters
    costs it more to build, send and plan than the index probes themselves.
    """
    values = list(values)
    if not values:
        return []
    quote = connection.ops.quote_name
    names = ("id", "fingerprint", "sha1_fingerprint", "state", "validity", "remediated_at")
    columns = ", ".join(quote(name) for name in names)
    where = f"{quote('fingerprint_key_id')} = %s AND {quote(column)} "
    if connection.vendor == "postgresql":
        where += "= ANY(%s::varchar[])"
        params: list[Any] = [key_id, pg_array(values)]
    else:
        where += f"IN ({', '.join(['%s'] * len(values))})"
        params = [key_id, *values]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {quote(Exposure._meta.db_table)} WHERE {where}", params)
        rows = cursor.fetchall()
    if connection.vendor != "postgresql":
        convert = cast(Any, connection.ops).convert_datetimefield_value  # SQLite's: text to aware datetime
        rows = [(*row[:5], None if row[5] is None else convert(row[5], None, connection)) for row in rows]
    return rows
