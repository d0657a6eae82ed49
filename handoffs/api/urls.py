"""`/api/v1/handoffs/`: dispatch, deliveries and the receivers' signed callback."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from handoffs.api.views import CallbackView, DeliveryViewSet, DispatchView

router = SimpleRouter()
router.register("handoffs/deliveries", DeliveryViewSet, basename="api-handoff-delivery")

urlpatterns = [
    path("handoffs/dispatch/", DispatchView.as_view(), name="api-handoff-dispatch"),
    path("handoffs/callback/", CallbackView.as_view(), name="api-handoff-callback"),
    *router.urls,
]
