"""The alignment report's traceability counts only what the audit chain proves: each case's latest chain
entry, filled from its transitions' entries (empty for cases from before the chain, which then do not count),
and an index of the transition rows the chain does not prove."""

from django.db import migrations, models
from django.db.models import Max, OuterRef, Subquery


def backfill(apps, schema_editor):
    Case = apps.get_model("cases", "Case")
    CaseTransition = apps.get_model("cases", "CaseTransition")
    db = schema_editor.connection.alias
    latest = (
        CaseTransition.objects.using(db)
        .filter(case_id=OuterRef("pk"))
        .values("case_id")
        .annotate(latest=Max("audit_seq"))
        .values("latest")
    )
    Case.objects.using(db).update(chain_seq=Subquery(latest))


class Migration(migrations.Migration):
    dependencies = [("cases", "0009_transition_audit_seq")]

    operations = [
        migrations.AddField(
            model_name="case",
            name="chain_seq",
            field=models.BigIntegerField(
                blank=True,
                editable=False,
                help_text=(
                    "The audit chain entry of the latest transition (set with it); empty for cases from "
                    "before the audit chain."
                ),
                null=True,
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="casetransition",
            index=models.Index(
                condition=models.Q(("audit_seq__isnull", True)), fields=["case"], name="transition_unproven"
            ),
        ),
    ]
