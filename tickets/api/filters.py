"""The ticket list's filters: one serializer for ``GET /v1/tickets`` query parameters and
for the ``filters`` of a saved view (``/v1/views``), so both accept exactly the same thing.

Its validated data is the *normalised* form that ``tickets.selectors.ticket_filter_q``
applies and that a saved view stores (``as_stored_filters`` makes it JSON):

    {"status": ["new", "open"], "assignee": "me", "team": 4, "tag": ["vip"],
     "created_after": datetime, "q": "printer", "ordering": "-updated_at"}

Several values are given repeated (``?status=new&status=open``), comma-separated
(``?status=new,open``) or, in a saved view's JSON, as a list. A reference (assignee, team,
category, customer, company, mailbox) is an id of this workspace's object, or ``none`` (the
field is empty), or for ``assignee`` also ``me``: another workspace's id is a 400
``invalid_reference`` naming the parameter, exactly like an id that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tickets.models import TicketChannel, TicketPriority, TicketStatus
from tickets.selectors import ME, NONE
from tickets.services import check_filter_references

# Orderings of the list, each backed by an index leading with workspace_id (updated_at:
# ticket_ws_updated_idx, created_at: ticket_ws_created_idx, number: the unique constraint),
# with the id as tie-breaker so cursor pages stay stable. Priority is not offered: four
# values make a poor cursor position and sort alphabetically rather than by urgency.
ORDERINGS = ("-updated_at", "updated_at", "-created_at", "created_at", "-number", "number")
DEFAULT_ORDERING = "-updated_at"
MAX_VALUES = 20


class MultiValueField(serializers.ListField):
    """A list given as repeated parameters, comma-separated values, or a JSON list."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_VALUES)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list | tuple):
            values: list[Any] = []
            for item in data:
                if isinstance(item, str):
                    values.extend(part.strip() for part in item.split(",") if part.strip())
                else:
                    values.append(item)
            data = values
        try:
            return list(dict.fromkeys(super().to_internal_value(data)))
        except serializers.ValidationError as exc:
            # Name the parameter, not "status.0": a query string has no indexes.
            detail = exc.detail
            if isinstance(detail, dict):
                messages = [str(m) for errors in detail.values() for m in errors]
                raise serializers.ValidationError(messages) from None
            raise


@extend_schema_field(OpenApiTypes.STR)
class ReferenceFilterField(serializers.Field):
    """An object id, or one of the keywords (``none``; ``me`` for the assignee)."""

    default_error_messages = {"invalid": "Use an id or one of: {keywords}."}

    def __init__(self, *, keywords: tuple[str, ...] = (NONE,), **kwargs: Any) -> None:
        self.keywords = keywords
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, str) and data.strip().lower() in self.keywords:
            return data.strip().lower()
        if isinstance(data, bool):
            self.fail("invalid", keywords=", ".join(self.keywords))
        try:
            value = int(str(data).strip())
        except (TypeError, ValueError):
            self.fail("invalid", keywords=", ".join(self.keywords))
        if not 1 <= value <= 2**53:
            self.fail("invalid", keywords=", ".join(self.keywords))
        return value

    def to_representation(self, value: Any) -> Any:
        return value


class TicketFilterQuery(serializers.Serializer):
    status = MultiValueField(
        child=serializers.ChoiceField(choices=TicketStatus.choices),
        help_text="One or more statuses (repeated or comma-separated).",
    )
    priority = MultiValueField(
        child=serializers.ChoiceField(choices=TicketPriority.choices),
        help_text="One or more priorities.",
    )
    channel = MultiValueField(
        child=serializers.ChoiceField(choices=TicketChannel.choices),
        help_text="One or more channels.",
    )
    assignee = ReferenceFilterField(
        keywords=(ME, NONE), help_text="An agent id, `me` or `none` (unassigned)."
    )
    team = ReferenceFilterField(help_text="A team id or `none`.")
    category = ReferenceFilterField(help_text="A category id or `none`.")
    company = ReferenceFilterField(help_text="A company id or `none`.")
    mailbox = ReferenceFilterField(help_text="A mailbox id or `none`.")
    customer = serializers.IntegerField(
        required=False, min_value=1, max_value=2**53, help_text="A customer id."
    )
    tag = MultiValueField(
        child=serializers.CharField(max_length=64),
        help_text="Tag names (case-insensitive): tickets with any of them.",
    )
    created_after = serializers.DateTimeField(required=False, help_text="Inclusive.")
    created_before = serializers.DateTimeField(required=False, help_text="Exclusive.")
    updated_after = serializers.DateTimeField(required=False, help_text="Inclusive.")
    updated_before = serializers.DateTimeField(required=False, help_text="Exclusive.")
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Search the subject and every comment (each word as a prefix); "
        "`#123` also finds ticket #123.",
    )
    ordering = serializers.ChoiceField(
        choices=ORDERINGS, required=False, help_text=f"Default `{DEFAULT_ORDERING}`."
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # Query strings are checked for unknown names by the view; a saved view's JSON here.
        if isinstance(data, Mapping) and not hasattr(data, "getlist"):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown filter."] for name in unknown})
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for after, before in (
            ("created_after", "created_before"),
            ("updated_after", "updated_before"),
        ):
            if attrs.get(after) and attrs.get(before) and attrs[after] >= attrs[before]:
                raise serializers.ValidationError({before: [f"Must be later than {after}."]})
        if "q" in attrs:
            attrs["q"] = " ".join(attrs["q"].split())
            if not attrs["q"]:
                del attrs["q"]
        request = self.context.get("request")
        workspace = getattr(request, "workspace", None)
        if workspace is not None:
            # Nested in a saved view's input, errors name "filters.<name>".
            prefix = f"{self.field_name}." if self.parent is not None else ""
            check_filter_references(workspace.pk, attrs, field_prefix=prefix)
        return attrs


def as_stored_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """Validated filters as JSON for a saved view (times in ISO 8601), empty values dropped."""
    stored: dict[str, Any] = {}
    for name, value in filters.items():
        if value in (None, "", [], ()):
            continue
        stored[name] = value.isoformat() if isinstance(value, datetime) else value
    return stored
