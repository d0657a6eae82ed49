"""Cursor pagination for lists: stable under inserts, and as fast on page 1,000 as on page 1."""

from rest_framework.pagination import CursorPagination


class PortalCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"
