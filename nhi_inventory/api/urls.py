from rest_framework.routers import SimpleRouter

from nhi_inventory.api.views import CredentialViewSet, NhiViewSet, TeamViewSet

router = SimpleRouter()
router.register("teams", TeamViewSet, basename="api-team")
router.register("nhis", NhiViewSet, basename="api-nhi")
router.register("credentials", CredentialViewSet, basename="api-credential")

urlpatterns = router.urls
