"""`/api/v1/frameworks/` and `/api/v1/controls/`: the catalogs, read-only (they are loaded from files)."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from frameworks.api.filters import ControlFilter
from frameworks.api.serializers import ControlSerializer, FrameworkSerializer
from frameworks.models import Control, Framework
from frameworks.selectors import control_list, framework_list
from portal.api.schema import error_responses


@extend_schema_view(
    list=extend_schema(
        summary="Framework catalogs", responses={200: FrameworkSerializer, **error_responses(400)}
    ),
    retrieve=extend_schema(
        summary="One framework", responses={200: FrameworkSerializer, **error_responses(404)}
    ),
)
class FrameworkViewSet(viewsets.ReadOnlyModelViewSet[Framework]):
    serializer_class = FrameworkSerializer
    lookup_value_regex = r"\d+"
    filterset_fields = ("key",)
    search_fields = ("key", "name")
    ordering_fields = ("name", "id")
    ordering = ("name",)

    def get_queryset(self) -> QuerySet[Framework]:
        return framework_list(user=self.request.user)


@extend_schema_view(
    list=extend_schema(
        summary="Controls of the catalogs",
        description="In catalog order by default; search matches the control's id (e.g. PR.AA-05) or title.",
        responses={200: ControlSerializer, **error_responses(400)},
    ),
    retrieve=extend_schema(summary="One control", responses={200: ControlSerializer, **error_responses(404)}),
)
class ControlViewSet(viewsets.ReadOnlyModelViewSet[Control]):
    serializer_class = ControlSerializer
    lookup_value_regex = r"\d+"
    filterset_class = ControlFilter
    search_fields = ("ref_id", "title")
    ordering_fields = ("id", "ref_id", "position")
    # Catalogs are loaded in file order, so ids follow each catalog's own order.
    ordering = ("id",)

    def get_queryset(self) -> QuerySet[Control]:
        return control_list(user=self.request.user).select_related("framework")
