"""Input and output serializers of the tickets API.

Input serializers check the shape of a request (types, lengths, choices) and nothing more:
the references they carry (``team_id``...) are fetched inside the workspace by the views
(``tickets.api.references``) and the rules are the services'. Output serializers read what
the selectors loaded (``select_related`` / ``prefetch_related`` / annotations), so
rendering a page of items issues no query of its own.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

from tickets.api.filters import MultiValueField
from tickets.models import (
    ActorType,
    AuthorType,
    CommentVia,
    ScheduledCommentStatus,
    TicketChannel,
    TicketEventKind,
    TicketPriority,
    TicketStatus,
)
from tickets.services import MAX_BULK_TICKETS, MAX_SUBJECT_LENGTH, MAX_TAG_LENGTH

MAX_BODY_LENGTH = 1_000_000
MAX_TAGS = 50
MAX_ATTACHMENTS = 20


def _id_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=2**53, **kwargs)


# --- Embedded objects ----------------------------------------------------------------------


class EmbeddedNamedOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class EmbeddedCustomerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()


class EmbeddedAgentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="Display name, else the user's name or email.")


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class TagNamesField(serializers.Field):
    """The names of a ticket's tags, from the prefetched relation."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def get_attribute(self, instance: Any) -> Any:
        return instance

    def to_representation(self, ticket: Any) -> list[str]:
        return [tag.name for tag in ticket.tags.all()]


class AttachmentRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    download_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_download_url(self, attachment: Any) -> str:
        path = reverse("attachment-download", kwargs={"pk": attachment.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class AuthorOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=AuthorType.choices)
    agent = EmbeddedAgentOutput(allow_null=True)
    customer = EmbeddedCustomerOutput(allow_null=True)


class ActorOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=ActorType.choices)
    agent = EmbeddedAgentOutput(allow_null=True)
    customer = EmbeddedCustomerOutput(allow_null=True)


# --- Tickets -------------------------------------------------------------------------------

# Rendering a page of 25 tickets field by field through DRF (get_attribute, a nested
# serializer per embed, a DateTimeField per timestamp) took 4-8 ms of CPU per request; the
# list item is built by hand instead (under 2 ms), from what the selector loaded, as DRF's
# fields render it: tickets/tests/test_api_ticket_output.py holds the two to the same bytes.

_DATETIME_FIELDS = (
    "created_at",
    "updated_at",
    "first_response_at",
    "first_response_due_at",
    "sla_due_at",
    "resolved_at",
    "closed_at",
    "last_customer_reply_at",
    "last_agent_reply_at",
)
# What DRF's ChoiceField answers for a stored value: the choice's key (a plain str).
_STATUS_KEYS = {str(key): key for key, _ in TicketStatus.choices}
_PRIORITY_KEYS = {str(key): key for key, _ in TicketPriority.choices}
_CHANNEL_KEYS = {str(key): key for key, _ in TicketChannel.choices}
_DRF_DATETIME = serializers.DateTimeField()


def _choice(keys: dict[str, str], value: Any) -> Any:
    if value in ("", None):
        return value
    return keys.get(str(value), value)


def _datetime(value: datetime | None, zone: Any) -> str | None:
    """DRF's ISO 8601 DateTimeField output: in the current time zone, UTC as ``Z``."""
    if not value:
        return None
    if value.tzinfo is None:
        # Naive values (never from the database with USE_TZ) take DRF's own path.
        return _DRF_DATETIME.to_representation(value)
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _named(obj: Any) -> dict[str, Any] | None:
    return None if obj is None else {"id": _int(obj.id), "name": _str(obj.name)}


def _assignee(ticket: Any) -> dict[str, Any] | None:
    # The name ``selectors.ticket_list_embeds`` read for a list page, else the Agent.
    if hasattr(ticket, "assignee_name"):
        if ticket.assignee_id is None:
            return None
        return {"id": _int(ticket.assignee_id), "name": _str(ticket.assignee_name)}
    return _named(ticket.assignee)


def _tag_names(ticket: Any) -> list[str]:
    embedded = getattr(ticket, "tag_names", None)
    if embedded is not None:
        return embedded
    # The prefetched list when the selector loaded it: ``ticket.tags.all()`` builds a
    # related manager and a queryset per row just to read the same cache.
    prefetched = getattr(ticket, "_prefetched_objects_cache", {}).get("tags")
    tags = prefetched if prefetched is not None else ticket.tags.all()
    return [tag.name for tag in tags]


def ticket_list_item(ticket: Any) -> dict[str, Any]:
    """``TicketOutput``'s fields of a ticket, in its order, as DRF renders them."""
    customer = ticket.customer
    zone = timezone.get_current_timezone()
    item = {
        "number": _int(ticket.number),
        "subject": _str(ticket.subject),
        "status": _choice(_STATUS_KEYS, ticket.status),
        "priority": _choice(_PRIORITY_KEYS, ticket.priority),
        "channel": _choice(_CHANNEL_KEYS, ticket.channel),
        "customer": (
            None
            if customer is None
            else {
                "id": _int(customer.id),
                "name": _str(customer.name),
                "email": _str(customer.email),
            }
        ),
        "company": _named(ticket.company),
        "assignee": _assignee(ticket),
        "team": _named(ticket.team),
        "category": _named(ticket.category),
        "tags": _tag_names(ticket),
        "mailbox_id": _int(ticket.mailbox_id),
        "merged_into": _int(ticket.merged_into_number),
    }
    for name in _DATETIME_FIELDS:
        item[name] = _datetime(getattr(ticket, name), zone)
    return item


class TicketOutput(serializers.Serializer):
    """A ticket as lists show it."""

    number = serializers.IntegerField(help_text="Per-workspace number: the ticket's address.")
    subject = serializers.CharField()
    status = serializers.ChoiceField(choices=TicketStatus.choices)
    priority = serializers.ChoiceField(choices=TicketPriority.choices)
    channel = serializers.ChoiceField(choices=TicketChannel.choices)
    customer = EmbeddedCustomerOutput()
    company = EmbeddedNamedOutput(allow_null=True)
    assignee = EmbeddedAgentOutput(allow_null=True)
    team = EmbeddedNamedOutput(allow_null=True)
    category = EmbeddedNamedOutput(allow_null=True)
    tags = TagNamesField()
    mailbox_id = serializers.IntegerField(allow_null=True)
    merged_into = serializers.IntegerField(
        source="merged_into_number",
        allow_null=True,
        help_text="The number of the ticket this one was merged into.",
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    first_response_at = serializers.DateTimeField(allow_null=True)
    first_response_due_at = serializers.DateTimeField(allow_null=True)
    sla_due_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    last_customer_reply_at = serializers.DateTimeField(allow_null=True)
    last_agent_reply_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        if str(api_settings.DATETIME_FORMAT).lower() != ISO_8601 or not _has_list_fields(
            type(self)
        ):
            return super().to_representation(instance)
        item = ticket_list_item(instance)
        # A subclass's own fields (the detail's body and counts...) come after the list's,
        # in their declared order, through DRF as in Serializer.to_representation.
        for field in self._extra_readable_fields():
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            item[field.field_name] = None if check is None else field.to_representation(attribute)
        return item

    def _extra_readable_fields(self) -> list[serializers.Field]:
        if type(self) is TicketOutput:
            # Not ``self.fields``: that deep-copies every declared field, nested ones too.
            return []
        return [field for field in self._readable_fields if field.field_name not in _LIST_FIELDS]


_LIST_FIELDS = frozenset(TicketOutput._declared_fields)


@functools.cache
def _has_list_fields(serializer_class: type[TicketOutput]) -> bool:
    """Whether a class renders the list's fields first, as declared on TicketOutput (so
    ``ticket_list_item`` gives them): not a subclass that redeclares one of them."""
    base = TicketOutput._declared_fields
    declared = serializer_class._declared_fields
    return list(declared)[: len(base)] == list(base) and all(
        declared[name] is field for name, field in base.items()
    )


class TicketBodyOutput(serializers.Serializer):
    text = serializers.CharField()
    html = serializers.CharField()


class TicketCountsOutput(serializers.Serializer):
    public_replies = serializers.IntegerField(source="public_reply_count")
    internal_notes = serializers.IntegerField(source="internal_note_count")
    attachments = serializers.IntegerField(source="attachment_count")


class TicketDetailOutput(TicketOutput):
    """One ticket: the list's fields, the first message as received, the thread's counts."""

    body = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    deleted_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(TicketBodyOutput(allow_null=True))
    def get_body(self, ticket: Any) -> dict[str, str] | None:
        body = getattr(ticket, "body", None)
        return TicketBodyOutput(body).data if body is not None else None

    @extend_schema_field(TicketCountsOutput)
    def get_counts(self, ticket: Any) -> dict[str, int]:
        return TicketCountsOutput(ticket).data


class ExportTicketOutput(TicketOutput):
    """A ticket in the export stream; ``deleted_at`` set tells a mirror to drop it."""

    deleted_at = serializers.DateTimeField(allow_null=True)


class CustomerInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


def _tags_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH), max_length=MAX_TAGS, **kwargs
    )


def _attachment_ids_field() -> serializers.ListField:
    return serializers.ListField(
        child=_id_field(),
        required=False,
        default=list,
        max_length=MAX_ATTACHMENTS,
        help_text="Ids from POST /v1/attachments, not yet used elsewhere.",
    )


def _body_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        max_length=MAX_BODY_LENGTH, allow_blank=True, trim_whitespace=False, **kwargs
    )


class TicketCreateInput(serializers.Serializer):
    subject = serializers.CharField(max_length=MAX_SUBJECT_LENGTH)
    body = _body_field(required=False, default="", help_text="The first message, plain text.")
    body_html = _body_field(
        required=False, default="", help_text="Or as HTML (sanitised); text is derived from it."
    )
    customer = CustomerInput(
        required=False, help_text="Found by email, or created. Or give customer_id."
    )
    customer_id = _id_field(required=False)
    priority = serializers.ChoiceField(
        choices=TicketPriority.choices, required=False, default=TicketPriority.NORMAL
    )
    status = serializers.ChoiceField(
        choices=TicketStatus.choices,
        required=False,
        help_text="Default `new`, or `open` with an assignee.",
    )
    assignee_id = _id_field(required=False, allow_null=True)
    team_id = _id_field(required=False, allow_null=True)
    category_id = _id_field(required=False, allow_null=True)
    tags = _tags_field(required=False, default=list)
    attachment_ids = _attachment_ids_field()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("customer" in attrs) == ("customer_id" in attrs):
            raise serializers.ValidationError(
                {"customer": ["Give either customer {email, name} or customer_id."]}
            )
        return attrs


class TicketUpdateInput(serializers.Serializer):
    subject = serializers.CharField(max_length=MAX_SUBJECT_LENGTH, required=False)
    status = serializers.ChoiceField(choices=TicketStatus.choices, required=False)
    priority = serializers.ChoiceField(choices=TicketPriority.choices, required=False)
    assignee_id = _id_field(required=False, allow_null=True, help_text="null unassigns.")
    team_id = _id_field(required=False, allow_null=True)
    category_id = _id_field(required=False, allow_null=True)
    tags = _tags_field(required=False, help_text="The complete new set of tags.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Name at least one field to change.")
        return attrs


class ReplyInput(serializers.Serializer):
    body = _body_field(required=False, default="", help_text="Plain text.")
    body_html = _body_field(required=False, default="", help_text="Or HTML (sanitised).")
    internal = serializers.BooleanField(
        required=False, default=False, help_text="An internal note, never sent to the customer."
    )
    attachment_ids = _attachment_ids_field()
    send_at = serializers.DateTimeField(
        required=False, help_text="Schedule the reply for this (future) time."
    )
    status = serializers.ChoiceField(
        choices=TicketStatus.choices,
        required=False,
        help_text="Set the ticket's status in the same step (not with send_at).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "send_at" in attrs and "status" in attrs:
            raise serializers.ValidationError(
                {"status": ["A scheduled reply cannot change the status."]}
            )
        return attrs


class AssignInput(serializers.Serializer):
    agent_id = _id_field(required=False, allow_null=True, help_text="null unassigns.")
    team_id = _id_field(required=False, allow_null=True, help_text="null clears the team.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give agent_id, team_id or both.")
        return attrs


class MergeInput(serializers.Serializer):
    into = _id_field(help_text="The number of the ticket to merge this one into.")


class BulkChangesInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=TicketStatus.choices, required=False)
    priority = serializers.ChoiceField(choices=TicketPriority.choices, required=False)
    assignee_id = _id_field(required=False, allow_null=True)
    team_id = _id_field(required=False, allow_null=True)
    category_id = _id_field(required=False, allow_null=True)
    add_tags = _tags_field(required=False, default=list)
    remove_tags = _tags_field(required=False, default=list)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not any(attrs.get(name) for name in ("add_tags", "remove_tags")) and not (
            set(attrs) - {"add_tags", "remove_tags"}
        ):
            raise serializers.ValidationError("Name at least one change.")
        return attrs


class BulkInput(serializers.Serializer):
    ids = serializers.ListField(
        child=_id_field(),
        min_length=1,
        max_length=MAX_BULK_TICKETS,
        help_text=f"Ticket numbers, at most {MAX_BULK_TICKETS}.",
    )
    changes = BulkChangesInput()


class ErrorDetailOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(required=False)


class BulkResultOutput(serializers.Serializer):
    number = serializers.IntegerField()
    ok = serializers.BooleanField()
    changed = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Fields changed (when ok)."
    )
    error = ErrorDetailOutput(required=False, help_text="Why this ticket did not change.")


class BulkOutput(serializers.Serializer):
    results = BulkResultOutput(many=True)


# --- The thread ----------------------------------------------------------------------------


def _person(agent: Any, customer: Any) -> dict[str, Any]:
    return {
        "agent": {"id": agent.pk, "name": agent.name} if agent is not None else None,
        "customer": (
            {"id": customer.pk, "name": customer.name, "email": customer.email}
            if customer is not None
            else None
        ),
    }


class CommentOutput(serializers.Serializer):
    object = serializers.SerializerMethodField(help_text="Always `comment`.")
    id = serializers.IntegerField()
    ticket = serializers.SerializerMethodField(help_text="The ticket's number.")
    author = serializers.SerializerMethodField()
    internal = serializers.BooleanField(source="is_internal")
    via = serializers.ChoiceField(choices=CommentVia.choices)
    body_html = serializers.CharField()
    body_text = serializers.CharField()
    attachments = AttachmentRefOutput(many=True, source="attachments.all")
    created_at = serializers.DateTimeField()

    def get_object(self, comment: Any) -> str:
        return "comment"

    def get_ticket(self, comment: Any) -> int:
        return _ticket_number(comment, self.context)

    @extend_schema_field(AuthorOutput)
    def get_author(self, comment: Any) -> dict[str, Any]:
        return {
            "type": comment.author_type,
            **_person(comment.author_agent, comment.author_customer),
        }


def _ticket_number(obj: Any, context: dict[str, Any]) -> int:
    # A ticket's thread is listed with the ticket in the context: no join per row.
    ticket = context.get("ticket")
    if ticket is not None and ticket.pk == obj.ticket_id:
        return ticket.number
    return obj.ticket.number


class ScheduledCommentOutput(serializers.Serializer):
    object = serializers.SerializerMethodField(help_text="Always `scheduled_comment`.")
    id = serializers.IntegerField()
    ticket = serializers.SerializerMethodField(help_text="The ticket's number.")
    author = EmbeddedAgentOutput(allow_null=True)
    internal = serializers.BooleanField(source="is_internal")
    body_html = serializers.CharField()
    body_text = serializers.CharField()
    send_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=ScheduledCommentStatus.choices)
    attempts = serializers.IntegerField()
    last_error = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)
    comment_id = serializers.IntegerField(allow_null=True, help_text="The comment, once sent.")
    attachments = AttachmentRefOutput(many=True, source="attachments.all")
    created_at = serializers.DateTimeField()

    def get_object(self, scheduled: Any) -> str:
        return "scheduled_comment"

    def get_ticket(self, scheduled: Any) -> int:
        return _ticket_number(scheduled, self.context)


class TicketEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=TicketEventKind.choices)
    field = serializers.CharField(help_text="The changed field, for field changes.")
    old = serializers.JSONField(source="old_value", allow_null=True)
    new = serializers.JSONField(source="new_value", allow_null=True)
    actor = serializers.SerializerMethodField()
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(ActorOutput)
    def get_actor(self, event: Any) -> dict[str, Any]:
        return {"type": event.actor_type, **_person(event.actor_agent, event.actor_customer)}


class ScheduledCommentQuery(serializers.Serializer):
    ticket = _id_field(required=False, help_text="A ticket's number.")
    status = MultiValueField(
        child=serializers.ChoiceField(choices=ScheduledCommentStatus.choices),
        help_text="One or more statuses (repeated or comma-separated).",
    )


# --- Attachments ---------------------------------------------------------------------------


class AttachmentOutput(AttachmentRefOutput):
    sha256 = serializers.CharField()
    ticket = serializers.IntegerField(
        source="ticket_number", allow_null=True, help_text="The ticket's number, once used."
    )
    comment_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class AttachmentUploadInput(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True, use_url=False, help_text="The file (multipart/form-data)."
    )


# --- Export --------------------------------------------------------------------------------


class ExportQuery(serializers.Serializer):
    since = serializers.DateTimeField(
        required=False, help_text="Start with the tickets changed at or after this time."
    )
    cursor = serializers.CharField(
        required=False, max_length=200, help_text="A previous page's `next_cursor`."
    )
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=500, default=100, help_text="Default 100."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "since" in attrs and "cursor" in attrs:
            raise serializers.ValidationError({"cursor": ["Give since or cursor, not both."]})
        return attrs


class ExportPageOutput(serializers.Serializer):
    results = ExportTicketOutput(many=True)
    next_cursor = serializers.CharField(
        help_text="Pass as `cursor` to continue, now or later: the stream resumes after the "
        "last ticket of this page."
    )
    end_of_stream = serializers.BooleanField(
        help_text="True when this page reached the present: poll again later with next_cursor."
    )
