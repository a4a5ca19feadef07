"""``GET /v1/export/tickets``: every ticket change, as a resumable stream.

An integrator mirrors a workspace by paging through the tickets in (updated_at, id) order:

    GET /v1/export/tickets?since=2024-05-01T00:00:00Z   → results, next_cursor, end_of_stream
    GET /v1/export/tickets?cursor=<next_cursor>          → the next page ... until end_of_stream
    (later) GET /v1/export/tickets?cursor=<last next_cursor> → whatever changed since

The cursor is the last (updated_at, id) returned, signed so a garbled one is a clean 400.
Every write to a ticket moves its ``updated_at`` forward, so a ticket changed while the
client pages lands after the client's position and comes again later in the stream: no
change is missed, and a ticket reappears only because it changed again. Deleted tickets
are included (``deleted_at`` set) so a mirror can drop them.

One subtlety: a writer stamps ``updated_at`` before its transaction commits. A page read in
between could pass over a row that becomes visible later with an older timestamp. So the
stream stops short of the present by ``TICKET_EXPORT_SETTLE_SECONDS`` (5 s by default, more
than any ticket transaction takes): rows younger than that come in a later call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.viewsets import WorkspaceScopedViewSet
from tickets.api.serializers import ExportPageOutput, ExportQuery
from tickets.models import Ticket
from tickets.selectors import ExportPosition, ticket_export_page
from workspaces.models import Workspace

_CURSOR_SALT = "tickets.export"
_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(position: ExportPosition) -> str:
    return signing.dumps(
        {"t": position.updated_at.isoformat(), "i": position.id}, salt=_CURSOR_SALT
    )


def decode_cursor(raw: str) -> ExportPosition:
    try:
        data: Any = signing.loads(raw, salt=_CURSOR_SALT)
        updated_at = parse_datetime(data["t"])
        last_id = int(data["i"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        updated_at = None
    if updated_at is None or timezone.is_naive(updated_at):
        raise exceptions.ValidationError({"cursor": ["Invalid cursor."]})
    return ExportPosition(updated_at=updated_at, id=last_id)


class TicketExportViewSet(WorkspaceScopedViewSet):
    model = Ticket
    pagination_class = None
    query_serializer_class = ExportQuery
    output_serializer_class = ExportPageOutput

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Ticket]:
        return Ticket.objects.for_workspace(workspace)

    @extend_schema(
        summary="Export tickets changed since a time or a cursor",
        description="Tickets in (updated_at, id) order, deleted ones included, with a "
        "cursor to resume from. Start with `since` (or neither, for everything); continue "
        "with `next_cursor` until `end_of_stream`, and keep the last cursor to pick up "
        "later changes. A ticket changed while you page comes again later in the stream.",
        responses={200: ExportPageOutput},
    )
    @action(detail=False, methods=["get"], url_path="tickets")
    def tickets(self, request: Request) -> Response:
        query = self.query
        if "cursor" in query:
            position = decode_cursor(query["cursor"])
        else:
            position = ExportPosition(updated_at=query.get("since", _BEGINNING), id=0)
        limit = query["page_size"]
        until = timezone.now() - timedelta(seconds=settings.TICKET_EXPORT_SETTLE_SECONDS)
        page = ticket_export_page(
            workspace=self.workspace, after=position, until=until, limit=limit
        )
        if page:
            last = page[-1]
            position = ExportPosition(updated_at=last.updated_at, id=last.pk)
        return self.output(
            {
                "results": page,
                "next_cursor": encode_cursor(position),
                "end_of_stream": len(page) < limit,
            }
        )
