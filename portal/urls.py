from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from audit.views import evidence_bundle_view
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
    path(
        "admin/cases/<int:case_id>/evidence-bundle/",
        admin.site.admin_view(evidence_bundle_view),
        name="cases_evidence_bundle",
    ),
    path("admin/", admin.site.urls),
    # The plain sign-in for NHI owners (the admin keeps its own), and their page.
    path("accounts/login/", auth_views.LoginView.as_view(template_name="findings/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("owner/", include("findings.urls")),
    path("api/v1/", include("portal.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
