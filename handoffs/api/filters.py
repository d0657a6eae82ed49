"""Query-string filters of the delivery list: they narrow what `delivery_list` scoped to the caller."""

import django_filters

from cases.api.filters import IdFilter
from handoffs.models import REPORTED_OUTCOMES, Delivery, DeliveryStatus


class DeliveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    outcome = django_filters.ChoiceFilter(choices=REPORTED_OUTCOMES)
    action_item = IdFilter(field_name="action_item_id")
    case = IdFilter(field_name="action_item__case_id")
    endpoint = IdFilter(field_name="endpoint_id")

    class Meta:
        model = Delivery
        fields = ("status", "outcome", "action_item", "case", "endpoint")
