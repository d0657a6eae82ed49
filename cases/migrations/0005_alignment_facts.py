"""Per-case facts and the mapped control's place in its catalog, for the alignment report; filled from the
existing rows (evidence, transitions, approvals; the controls), then indexed."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Exists, F, OuterRef


def backfill(apps, schema_editor):
    Case = apps.get_model("cases", "Case")
    Evidence = apps.get_model("cases", "Evidence")
    CaseTransition = apps.get_model("cases", "CaseTransition")
    Approval = apps.get_model("cases", "Approval")
    Mapping = apps.get_model("cases", "CaseControlMapping")
    Control = apps.get_model("frameworks", "Control")
    db = schema_editor.connection.alias
    case = OuterRef("pk")
    Case.objects.using(db).update(
        has_evidence=Exists(Evidence.objects.using(db).filter(case_id=case)),
        traceable=~Exists(
            CaseTransition.objects.using(db).filter(case_id=case, reason="").exclude(name="open")
        ),
        closure_second_person_approved=Exists(
            Approval.objects.using(db)
            .filter(case_id=case, kind="closure", status="approved", decided_by__isnull=False)
            .exclude(decided_by_id=F("requested_by_id"))
        ),
    )
    # Same rules as cases.models.control_groups.
    for control in Control.objects.using(db).select_related("parent"):
        if control.kind == "subcategory":
            category, function = control.parent_id, control.parent.parent_id if control.parent else None
        elif control.kind == "category":
            category, function = control.pk, control.parent_id
        elif control.kind == "function":
            category, function = None, control.pk
        else:
            category, function = None, None
        Mapping.objects.using(db).filter(control_id=control.pk).update(
            framework_id=control.framework_id, category_id=category, function_id=function
        )


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0004_report_snapshots"),
        ("frameworks", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="case",
            name="closure_second_person_approved",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text="A closure approval was approved by a second person (cleared on reopen).",
            ),
        ),
        migrations.AddField(
            model_name="case",
            name="has_evidence",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text="At least one evidence item was captured (set by evidence_capture).",
            ),
        ),
        migrations.AddField(
            model_name="case",
            name="traceable",
            field=models.BooleanField(
                default=True,
                editable=False,
                help_text="Every transition after opening gave a reason (cleared for good otherwise).",
            ),
        ),
        migrations.AddField(
            model_name="casecontrolmapping",
            name="category",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="frameworks.control",
            ),
        ),
        migrations.AddField(
            model_name="casecontrolmapping",
            name="framework",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="frameworks.framework",
            ),
        ),
        migrations.AddField(
            model_name="casecontrolmapping",
            name="function",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="frameworks.control",
            ),
        ),
        migrations.AddField(
            model_name="historicalcase",
            name="closure_second_person_approved",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text="A closure approval was approved by a second person (cleared on reopen).",
            ),
        ),
        migrations.AddField(
            model_name="historicalcase",
            name="has_evidence",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text="At least one evidence item was captured (set by evidence_capture).",
            ),
        ),
        migrations.AddField(
            model_name="historicalcase",
            name="traceable",
            field=models.BooleanField(
                default=True,
                editable=False,
                help_text="Every transition after opening gave a reason (cleared for good otherwise).",
            ),
        ),
        migrations.AddField(
            model_name="historicalcasecontrolmapping",
            name="category",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="frameworks.control",
            ),
        ),
        migrations.AddField(
            model_name="historicalcasecontrolmapping",
            name="framework",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="frameworks.framework",
            ),
        ),
        migrations.AddField(
            model_name="historicalcasecontrolmapping",
            name="function",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="frameworks.control",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="casecontrolmapping",
            index=models.Index(
                fields=["framework", "is_active", "control", "case"], name="mapping_framework_control"
            ),
        ),
        migrations.AddIndex(
            model_name="casecontrolmapping",
            index=models.Index(
                fields=["framework", "is_active", "case", "category", "function"], name="mapping_framework_case"
            ),
        ),
    ]
