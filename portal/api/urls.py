"""`/api/v1/`: each app's endpoints under one prefix."""

from django.urls import include, path

urlpatterns = [
    path("", include("nhi_inventory.api.urls")),
    path("", include("frameworks.api.urls")),
    path("", include("cases.api.urls")),
    path("", include("findings.api.urls")),
    path("", include("intake.api.urls")),
    path("", include("handoffs.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("portal.api.token_urls")),
]
