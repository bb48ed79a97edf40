"""Page-number pagination: {"count", "next", "previous", "results"}."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (default PAGE_SIZE, at most 500 per page)."""

    page_size_query_param = "page_size"
    max_page_size = 500
