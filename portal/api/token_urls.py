from rest_framework.routers import SimpleRouter

from portal.api.token_views import ApiTokenViewSet

router = SimpleRouter()
router.register("tokens", ApiTokenViewSet, basename="api-token")

urlpatterns = router.urls
