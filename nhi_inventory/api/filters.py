"""Filters of the inventory lists. Ids are plain numbers, not checked against the table: an unknown or
another team's id gives an empty list, so a filter cannot tell whether a row exists."""

import django_filters

from nhi_inventory.models import Credential, NonHumanIdentity
from portal.api.filters import IdFilter


class NhiFilter(django_filters.FilterSet):
    provider = django_filters.CharFilter(lookup_expr="iexact")
    owner_team = IdFilter(help_text="The owning team's id.")
    owner = django_filters.CharFilter(field_name="owner__username", help_text="The owner's username.")

    class Meta:
        model = NonHumanIdentity
        fields = (
            "kind",
            "provider",
            "environment",
            "owner_team",
            "owner",
            "lifecycle_state",
            "privilege_level",
            "criticality",
            "internet_facing",
            "third_party",
        )


class CredentialFilter(django_filters.FilterSet):
    nhi = IdFilter(help_text="The identity's id.")
    owner_team = IdFilter(field_name="nhi__owner_team", help_text="The identity's team id.")

    class Meta:
        model = Credential
        fields = ("nhi", "credential_type", "status", "owner_team", "fingerprint")
