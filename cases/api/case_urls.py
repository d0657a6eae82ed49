"""Cases and the work on them: `/cases/`, `/evidence/`, `/action-items/`, `/approvals/`; a case's evidence
bundle (`/cases/{id}/evidence-bundle/`, audit/api/bundle_views.py)."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from audit.api.bundle_views import CaseEvidenceBundleView
from cases.api.views import ActionItemViewSet, ApprovalViewSet, CaseViewSet, EvidenceViewSet

router = SimpleRouter()
router.register("cases", CaseViewSet, basename="api-case")
router.register("evidence", EvidenceViewSet, basename="api-evidence")
router.register("action-items", ActionItemViewSet, basename="api-action-item")
router.register("approvals", ApprovalViewSet, basename="api-approval")

urlpatterns = [
    re_path(
        r"^cases/(?P<pk>[^/]+)/evidence-bundle/$", CaseEvidenceBundleView.as_view(), name="api-case-bundle"
    ),
    *router.urls,
]
