"""The owner page, mounted at /owner/ (portal/urls.py)."""

from django.urls import path

from findings import views

app_name = "findings"

urlpatterns = [
    path("", views.owner_list, name="owner_list"),
    path("exposures/<int:exposure_id>/", views.exposure_detail, name="exposure_detail"),
    # Opened from an email: the signed token is the only credential, and only for this exposure.
    path("exposures/<int:exposure_id>/answer/<str:token>/", views.answer_by_link, name="answer_link"),
]
