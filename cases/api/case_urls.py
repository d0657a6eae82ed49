"""Cases and the work on them: `/cases/`, `/evidence/`, `/action-items/`, `/approvals/`."""

from rest_framework.routers import SimpleRouter

from cases.api.views import ActionItemViewSet, ApprovalViewSet, CaseViewSet, EvidenceViewSet

router = SimpleRouter()
router.register("cases", CaseViewSet, basename="api-case")
router.register("evidence", EvidenceViewSet, basename="api-evidence")
router.register("action-items", ActionItemViewSet, basename="api-action-item")
router.register("approvals", ApprovalViewSet, basename="api-approval")

urlpatterns = router.urls
