"""Keyset ("cursor") pagination for the UI's lists: no OFFSET, ever.

A page is ``WHERE (position) < (last row's position) ORDER BY ... LIMIT n+1``: it costs the
same at the millionth ticket as at the first (an index range scan from the position, as
the ticket list's indexes lead with workspace_id and end with the sort key and id), and a
row inserted while an agent pages neither repeats nor gets skipped.

The ordering is a sort field and ``id`` as tie-breaker, in the same direction. A cursor is
the position of a page's edge row and a direction, base64 JSON: positions are not secrets
(the rows they name are filtered by workspace like any other), and a cursor that does not
decode simply gives the first page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils.dateparse import parse_datetime

M = TypeVar("M", bound=Model)


@dataclass
class Page(Generic[M]):
    rows: list[M]
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def is_first(self) -> bool:
        return self.previous_cursor is None


def _encode(value: Any, pk: int, *, before: bool) -> str:
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    raw = json.dumps({"v": value, "id": pk, "b": before}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[Any, int, bool] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        value, pk, before = data["v"], int(data["id"]), bool(data["b"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
    if isinstance(value, dict):
        value = parse_datetime(str(value.get("t", "")))
        if value is None:
            return None
    elif value is not None and not isinstance(value, int | str):
        return None
    return value, pk, before


def keyset_page(
    queryset: QuerySet[M], *, field: str, descending: bool, cursor: str | None, size: int
) -> Page[M]:
    """One page of ``queryset`` ordered by ``field`` then id, from ``cursor``."""
    decoded = _decode(cursor) if cursor else None
    forward = decoded is None or not decoded[2]
    # Walking backwards (the "previous" link) reads the other way and flips the rows back.
    read_descending = descending if forward else not descending
    prefix = "-" if read_descending else ""
    ordered = queryset.order_by(f"{prefix}{field}", f"{prefix}id")
    if decoded is not None:
        value, pk, _ = decoded
        op = "lt" if read_descending else "gt"
        ordered = ordered.filter(
            Q(**{f"{field}__{op}": value}) | Q(**{field: value, f"id__{op}": pk})
        )
    rows = list(ordered[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if not forward:
        rows.reverse()
    has_next = more if forward else True
    has_previous = (decoded is not None) if forward else more
    next_cursor = previous_cursor = None
    if rows and has_next:
        last = rows[-1]
        next_cursor = _encode(getattr(last, field), last.pk, before=False)
    if rows and has_previous:
        first = rows[0]
        previous_cursor = _encode(getattr(first, field), first.pk, before=True)
    return Page(rows=rows, next_cursor=next_cursor, previous_cursor=previous_cursor)
