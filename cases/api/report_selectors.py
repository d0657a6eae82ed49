"""Reads behind the mapping, report and snapshot endpoints, scoped by user like `cases.selectors`."""

from django.db.models import QuerySet

from cases.models import CaseControlMapping, ReportSnapshot
from cases.selectors import case_list, sees_all_cases
from portal.permissions import Actor


def mapping_list(*, user: Actor) -> QuerySet[CaseControlMapping]:
    """The control mappings of the cases the user may see (active and removed ones: removals are history)."""
    mappings = CaseControlMapping.objects.all()
    if not user.is_authenticated or not user.is_active:
        return mappings.none()
    if sees_all_cases(user):
        return mappings
    return mappings.filter(case__in=case_list(user=user))


def report_snapshot_list(*, user: Actor) -> QuerySet[ReportSnapshot]:
    """Snapshots count every case, so only people who see every case see them; never loads the bytes."""
    snapshots = ReportSnapshot.objects.defer("content")
    if not user.is_authenticated or not sees_all_cases(user):
        return snapshots.none()
    return snapshots
