from django.urls import path
from rest_framework.routers import SimpleRouter

from findings.api.views import (
    AttributionRuleViewSet,
    ExposureViewSet,
    FindingViewSet,
    ImportRunViewSet,
    IngestJobViewSet,
    IngestView,
    PromotionRuleViewSet,
)

router = SimpleRouter()
router.register("exposures", ExposureViewSet, basename="exposure")
router.register("findings", FindingViewSet, basename="finding")
router.register("imports", ImportRunViewSet, basename="import-run")
router.register("attribution-rules", AttributionRuleViewSet, basename="attribution-rule")
router.register("promotion-rules", PromotionRuleViewSet, basename="promotion-rule")
router.register("ingest/jobs", IngestJobViewSet, basename="ingest-job")

urlpatterns = [path("ingest/", IngestView.as_view(), name="ingest"), *router.urls]
