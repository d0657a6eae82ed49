"""Admin building blocks shared by the apps whose rows are written only by services."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin


class ReadOnlyAdminMixin:
    """Rows that only services (or catalog loads) write: the admin shows them and their history."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()


class ScopedHistoryMixin:
    """Keep history pages to rows the person may see, and refuse any revert (a POST).

    simple-history's history pages find rows without `get_queryset`, and SIMPLE_HISTORY_REVERT_DISABLED only
    hides the Revert button.
    """

    def _visible_or_404(self, request: HttpRequest, object_id: str) -> None:
        if self.get_object(request, unquote(object_id)) is None:  # type: ignore[attr-defined]
            raise Http404("No such record, or it belongs to another team.")

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        self._visible_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)  # type: ignore[misc]

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied(
                "Reverting to an earlier version is disabled: it would bypass the services."
            )
        self._visible_or_404(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)  # type: ignore[misc]


class HistoryAdmin(ScopedHistoryMixin, SimpleHistoryAdmin):
    """Every domain model's admin: history visible to those who may see the row, never reverted."""

    # Django 6 makes https the default scheme for typed-in URLs; opt in now.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
