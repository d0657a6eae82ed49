"""Query-string filters of the entry list: a case, an event, a range of positions."""

import django_filters

from audit.models import AuditEntry
from portal.api.filters import IdFilter


class AuditEntryFilter(django_filters.FilterSet):
    case = IdFilter(field_name="case_id", help_text="Id of the case the entries concern.")
    event = django_filters.CharFilter(max_length=64, help_text="An event name, e.g. `case.confirm`.")
    seq_from = IdFilter(field_name="seq", lookup_expr="gte", help_text="From this position on (inclusive).")
    seq_to = IdFilter(field_name="seq", lookup_expr="lte", help_text="Up to this position (inclusive).")

    class Meta:
        model = AuditEntry
        fields = ("case", "event", "seq_from", "seq_to")
