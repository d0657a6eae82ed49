"""Mappings, the alignment report and report snapshots (the cases' own endpoints are in `case_urls`)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from cases.api.report_views import AlignmentReportView, MappingViewSet, ReportSnapshotViewSet

router = SimpleRouter()
router.register("mappings", MappingViewSet, basename="api-mapping")
router.register("report-snapshots", ReportSnapshotViewSet, basename="api-report-snapshot")

urlpatterns = [
    path("reports/alignment/", AlignmentReportView.as_view(), name="api-report-alignment"),
    *router.urls,
]
