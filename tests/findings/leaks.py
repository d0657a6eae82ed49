"""Look for planted secret strings in every table of the test database, history tables included."""

from collections.abc import Iterable

from django.db import connection


def tables_containing(secrets: Iterable[str]) -> list[str]:
    """'table: secret…' for every table holding any of the secrets anywhere in any column."""
    wanted = [secret for secret in secrets if secret]
    hits: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                text = "\x00".join(
                    value.tobytes().decode("latin-1")
                    if isinstance(value, memoryview)
                    else value.decode("latin-1")
                    if isinstance(value, bytes)
                    else str(value)
                    for value in row
                )
                hits.extend(f"{table}: {secret[:6]}…" for secret in wanted if secret in text)
    return sorted(set(hits))
