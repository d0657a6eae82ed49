"""The cases app's endpoints: cases and their work (`case_urls`), mappings and reports (`report_urls`)."""

from django.urls import include, path

urlpatterns = [
    path("", include("cases.api.case_urls")),
    path("", include("cases.api.report_urls")),
]
