"""PostgreSQL trigram indexes behind the admin's search boxes.

The admin's `icontains` search is `UPPER(col) LIKE UPPER('%term%')` on PostgreSQL, which no B-tree index
can answer: at 100,000 cases each search scanned and upper-cased every row twice (count and page), 214–264 ms
(docs/PERFORMANCE.md). A GIN trigram index on exactly `UPPER(col)` answers it in a few milliseconds. SQLite
has no such index and needs none (its LIKE is case-insensitive without a function call), so the migration
operations below do nothing there.
"""

from typing import Any

from django.db import migrations
from django.db.migrations.operations.base import Operation


def upper_trigram_indexes(indexes: dict[str, tuple[str, str]]) -> list[Operation]:
    """Operations that create (and on reverse drop) `name: (table, column)` indexes on PostgreSQL only."""

    def create(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        # The extension is shared by several apps' indexes, so reversing one app's migration leaves it.
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, (table, column) in indexes.items():
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" USING gin (UPPER("{column}") gin_trgm_ops)'
            )

    def drop(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for name in indexes:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')

    return [migrations.RunPython(create, drop)]
