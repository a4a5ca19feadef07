"""What the people and settings viewsets share on top of ``WorkspaceScopedViewSet``.

Serializers per action in three dicts (input, output, query) instead of one
``get_*_serializer_class`` override per viewset; an action missing from a dict falls back
to the class attribute (which ``@action(output_serializer_class=...)`` sets). Paginated
sub-lists (``/customers/:id/tickets``) accept ``cursor`` and ``page_size`` like ``list``.
"""

from __future__ import annotations

from typing import Any

from rest_framework.serializers import BaseSerializer

from enque.api.viewsets import WorkspaceScopedViewSet

# Marks "this action has no output body" (a 204) in ``output_serializers``.
NO_CONTENT: Any = None


class PeopleViewSet(WorkspaceScopedViewSet):
    input_serializers: dict[str, type[BaseSerializer]] = {}
    output_serializers: dict[str, type[BaseSerializer] | None] = {}
    query_serializers: dict[str, type[BaseSerializer]] = {}
    # Actions besides ``list`` that answer a cursor-paginated list.
    paginated_actions: frozenset[str] = frozenset()

    def get_input_serializer_class(self) -> type[BaseSerializer] | None:
        return self.input_serializers.get(self.action, self.input_serializer_class)

    def get_output_serializer_class(self) -> type[BaseSerializer] | None:
        if self.action in self.output_serializers:
            return self.output_serializers[self.action]
        return self.output_serializer_class

    def get_query_serializer_class(self) -> type[BaseSerializer] | None:
        return self.query_serializers.get(self.action, self.query_serializer_class)

    def allowed_query_params(self) -> set[str]:
        allowed = super().allowed_query_params()
        if self.action in self.paginated_actions:
            allowed.update(getattr(self.paginator, "query_params", ()))
        return allowed
