"""Cursor pagination for every ``/v1`` list.

A cursor names a position in a fixed ordering (not a page number), so rows inserted while
a client pages neither repeat nor get skipped, and every page costs the same at row one
million as at row one (an indexed ``WHERE position < x ORDER BY ... LIMIT n``).

    {"results": [...], "next": "https://…/v1/tickets?cursor=cD0y…", "previous": null}

``page_size`` defaults to 25, at most 100; a value that is not an integer in 1..100 is a 400
naming ``page_size`` (DRF would silently fall back to the default). A cursor that does not
decode is a 400 naming ``cursor``.

The ordering is the view's ``cursor_ordering`` (a tuple; its first field is the cursor
position, so it should be unique or nearly so — a timestamp, with the id as tie-breaker),
else ``("-created_at", "-id")``, the tenant models' default.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, pagination
from rest_framework.request import Request
from rest_framework.response import Response

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


class CursorPagination(pagination.CursorPagination):
    page_size = DEFAULT_PAGE_SIZE
    max_page_size = MAX_PAGE_SIZE
    page_size_query_param = "page_size"
    ordering = ("-created_at", "-id")
    query_params = ("cursor", "page_size")

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= self.max_page_size:
            raise exceptions.ValidationError(
                {
                    self.page_size_query_param: [
                        f"Must be an integer between 1 and {self.max_page_size}."
                    ]
                }
            )
        return value

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        ordering = getattr(view, "cursor_ordering", None)
        if callable(ordering):
            ordering = ordering()
        return tuple(ordering or self.ordering)

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError(
                {self.cursor_query_param: ["Invalid cursor."]}
            ) from None

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {"results": data, "next": self.get_next_link(), "previous": self.get_previous_link()}
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["results", "next", "previous"],
            "properties": {
                "results": schema,
                "next": {**link, "description": "The next page, null on the last one."},
                "previous": {**link, "description": "The previous page, null on the first one."},
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position from a previous page's `next` or `previous`.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Items per page (default {self.page_size}).",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                },
            },
        ]
