"""`/api/v1/audit/`: the chain's entries and its verifications."""

from rest_framework.routers import SimpleRouter

from audit.api.views import AuditEntryViewSet, AuditVerificationViewSet

router = SimpleRouter()
router.register("audit/entries", AuditEntryViewSet, basename="api-audit-entry")
router.register("audit/verifications", AuditVerificationViewSet, basename="api-audit-verification")

urlpatterns = router.urls
