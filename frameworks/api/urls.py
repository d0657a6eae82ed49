from rest_framework.routers import SimpleRouter

from frameworks.api.views import ControlViewSet, FrameworkViewSet

router = SimpleRouter()
router.register("frameworks", FrameworkViewSet, basename="api-framework")
router.register("controls", ControlViewSet, basename="api-control")

urlpatterns = router.urls
