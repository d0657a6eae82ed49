from django.contrib import admin

from frameworks.models import Control, Framework
from portal.admin_mixins import HistoryAdmin, ReadOnlyAdminMixin


class ReadOnlyCatalogAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    """Catalogs come from the shipped files (load_catalogs); editing them by hand would fork the source."""


@admin.register(Framework)
class FrameworkAdmin(ReadOnlyCatalogAdmin):
    list_display = ("name", "version", "key", "publisher", "loaded_at")
    search_fields = ("name", "key")


@admin.register(Control)
class ControlAdmin(ReadOnlyCatalogAdmin):
    list_display = ("ref_id", "title", "kind", "framework", "parent")
    list_select_related = ("framework", "parent")
    list_filter = ("framework", "kind")
    search_fields = ("ref_id", "title", "statement")
    ordering = ("framework", "position")
