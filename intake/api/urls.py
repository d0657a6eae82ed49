"""`/api/v1/intake/`: assistant outputs, submitted and listed."""

from rest_framework.routers import SimpleRouter

from intake.api.views import AssistantOutputViewSet

router = SimpleRouter()
router.register("intake", AssistantOutputViewSet, basename="api-intake")

urlpatterns = router.urls
