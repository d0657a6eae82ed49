import django_filters

from frameworks.models import Control
from portal.api.filters import IdFilter


class ControlFilter(django_filters.FilterSet):
    framework = IdFilter(help_text="The framework's id.")
    framework_key = django_filters.CharFilter(field_name="framework__key", help_text="e.g. nist-csf-2.0")
    parent = IdFilter(help_text="The parent control's id (a category's subcategories).")

    class Meta:
        model = Control
        fields = ("framework", "framework_key", "kind", "parent", "ref_id")
