from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from cases.reports.admin import alignment_report_view

admin.site.site_header = "NHI Governance Portal"
admin.site.site_title = "NHI Governance Portal"
admin.site.index_title = "Cases, identities and frameworks"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    # Before the admin's own URLs, so the report lives next to the Cases app's pages.
    path(
        "admin/cases/alignment-report/",
        admin.site.admin_view(alignment_report_view),
        name="cases_alignment_report",
    ),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
