"""PostgreSQL only: leave room in each page of exposures and findings for their re-import updates.

A re-import rewrites last-seen and the occurrence counts of every row it sees; none of those columns is
indexed, so with free space on the page PostgreSQL updates the row in place (a HOT update) instead of
adding a new entry to every index of the table. SQLite has no such setting.
"""

from django.db import migrations

TABLES = {"findings_exposure": 70, "findings_finding": 80}


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, fillfactor in TABLES.items():
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} SET (fillfactor = {fillfactor})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("findings", "0002_default_promotion_rules")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
