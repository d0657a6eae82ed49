"""The guidance's promotion rule as default rows; edit them in the admin (Promotion rules).

Only a live secret does not wait for attribution: a scanner without verification (gitleaks, detect-secrets) reports
every secret as of unknown validity, and an exposure nobody owns yet belongs in the triage queue first.
"""

from django.db import migrations

DEFAULTS = (
    # position, condition, requires_attribution, min_locations, severity
    (10, "valid", False, 3, 4),
    (20, "service_account", True, 3, 3),
    (30, "recurring", True, 3, 3),
    (40, "unknown_validity", True, 3, 2),
)


def create_defaults(apps, schema_editor):
    PromotionRule = apps.get_model("findings", "PromotionRule")
    if PromotionRule.objects.exists():
        return
    for position, condition, requires_attribution, min_locations, severity in DEFAULTS:
        PromotionRule.objects.create(
            position=position,
            condition=condition,
            requires_attribution=requires_attribution,
            min_locations=min_locations,
            severity=severity,
        )


class Migration(migrations.Migration):
    dependencies = [("findings", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
