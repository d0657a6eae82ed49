"""The default SLA per severity, and the due dates that existed before the SLA marked as set by hand."""

from django.db import migrations

# Severity (1 low .. 4 critical) -> hours to resolve: low 30 days, medium 7 days, high 72 h, critical 24 h.
DEFAULT_HOURS = {4: 24, 3: 72, 2: 7 * 24, 1: 30 * 24}


def create_defaults(apps, schema_editor):
    SlaPolicy = apps.get_model("cases", "SlaPolicy")
    Case = apps.get_model("cases", "Case")
    for severity, hours in DEFAULT_HOURS.items():
        SlaPolicy.objects.get_or_create(severity=severity, defaults={"hours_to_resolve": hours})
    # Before this migration every due date was typed in by a person: the SLA must not move them.
    Case.objects.filter(due_at__isnull=False).update(due_at_set_by_hand=True)


class Migration(migrations.Migration):
    dependencies = [("cases", "0007_sla_escalation")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
