"""``/v1/tickets`` and ``/v1/scheduled-comments``.

A ticket is addressed by its per-workspace number (``/v1/tickets/12`` is #12 of the
caller's workspace); a deleted ticket answers 404 everywhere but ``restore``. Each view is
the three steps of ``WorkspaceScopedViewSet``: a checked fetch inside the workspace, a
service of ``tickets.services``, an output serializer.

Query budget of ``GET /v1/tickets`` (asserted in tests/test_api_tickets.py): the token's
agent, the page of tickets with customer, company, team and category joined, the names of
their assignees, their tags — four queries whatever the page size (three when no ticket
of the page is assigned), plus one EXISTS per reference filter given.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from enque.api.permissions import IsAdminRole, require_full_agent
from enque.api.viewsets import WorkspaceScopedViewSet
from enque.errors import InvalidInput
from tickets import selectors, services
from tickets.actors import Actor
from tickets.api.filters import DEFAULT_ORDERING, TicketFilterQuery
from tickets.api.references import (
    attachment_references,
    customer_reference,
    references,
)
from tickets.api.serializers import (
    AssignInput,
    BulkInput,
    BulkOutput,
    CommentOutput,
    MergeInput,
    ReplyInput,
    ScheduledCommentOutput,
    ScheduledCommentQuery,
    TicketCreateInput,
    TicketDetailOutput,
    TicketEventOutput,
    TicketOutput,
    TicketUpdateInput,
)
from tickets.models import ScheduledComment, Ticket, TicketChannel
from workspaces.models import Workspace
from workspaces.services import customer_get_or_create


def cursor_ordering_for(ordering: str) -> tuple[str, str]:
    """An ordering with the id as tie-breaker, in the same direction."""
    return (ordering, "-id" if ordering.startswith("-") else "id")


def paginated_tickets(view: WorkspaceScopedViewSet, queryset: QuerySet[Ticket]) -> Response:
    """A page of ``queryset`` (of ``selectors.ticket_list``) as ticket list items: only the
    columns they show of the joined rows, the assignees' names and the tags loaded onto
    the page in two queries. The two go together: without the embeds, each row would
    load its assignee on its own."""
    return view.paginated(
        selectors.ticket_list_item_columns(queryset), embed=selectors.ticket_list_embeds
    )


class PaginatedActionsMixin:
    """Lets the extra actions that return a page accept ``cursor`` and ``page_size`` (the
    base allows them on ``list`` only)."""

    paginated_actions: frozenset[str] = frozenset({"list"})

    def allowed_query_params(self) -> set[str]:
        allowed = super().allowed_query_params()  # type: ignore[misc]
        paginator = getattr(self, "paginator", None)
        if paginator is not None and getattr(self, "action", None) in self.paginated_actions:
            allowed.update(paginator.query_params)
        return allowed


TICKET_CREATE_EXAMPLE = OpenApiExample(
    "A ticket for a customer, found or created by email",
    request_only=True,
    value={
        "subject": "Printer on fire",
        "body": "Our printer is on fire again. Please help.",
        "customer": {"email": "carol@customer.test", "name": "Carol Customer"},
        "priority": "high",
        "tags": ["hardware"],
    },
)
REPLY_EXAMPLES = [
    OpenApiExample(
        "A public reply that sets the ticket pending",
        request_only=True,
        value={"body": "We are sending a technician.", "status": "pending"},
    ),
    OpenApiExample(
        "An internal note",
        request_only=True,
        value={"body": "Customer is on the premium plan.", "internal": True},
    ),
    OpenApiExample(
        "A reply scheduled for later",
        request_only=True,
        value={"body": "Good morning! Any news?", "send_at": "2030-01-02T09:00:00Z"},
    ),
]
ReplyResult = PolymorphicProxySerializer(
    component_name="ReplyResult",
    serializers={"comment": CommentOutput, "scheduled_comment": ScheduledCommentOutput},
    resource_type_field_name="object",
)


@extend_schema_view(
    list=extend_schema(
        summary="List tickets",
        description="Filtered, searched and ordered; cursor-paginated (stable while tickets "
        "change). Several values of one filter match any of them; different filters all "
        "apply. A reference to another workspace's object is a 400 `invalid_reference`.",
    ),
    retrieve=extend_schema(
        summary="One ticket", description="With its first message and the thread's counts."
    ),
    partial_update=extend_schema(
        summary="Change a ticket",
        description="Any of subject, status, priority, assignee_id, team_id, category_id and "
        "tags (the complete new set); each change is recorded in the ticket's history.",
        examples=[
            OpenApiExample(
                "Assign and raise the priority",
                request_only=True,
                value={"assignee_id": 12, "priority": "urgent"},
            )
        ],
    ),
    destroy=extend_schema(
        summary="Delete a ticket (admins)",
        description="A soft delete: the ticket disappears from every list and answers 404 "
        "until an admin restores it.",
    ),
)
class TicketViewSet(PaginatedActionsMixin, WorkspaceScopedViewSet):
    model = Ticket
    lookup_field = "number"
    lookup_url_kwarg = "number"
    # Ticket numbers are positive 32-bit integers; longer digit strings are simply not found.
    lookup_value_regex = "[0-9]{1,9}"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    input_serializer_class = TicketCreateInput
    output_serializer_class = TicketDetailOutput
    action_permission_classes = {"destroy": (IsAdminRole,), "restore": (IsAdminRole,)}
    # Light agents may post internal notes (reply checks the rest).
    light_agent_actions = frozenset({"reply"})
    paginated_actions = frozenset({"list", "comments", "events"})

    _ticket: Ticket | None = None

    # --- plumbing ------------------------------------------------------------------------

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Ticket]:
        if self.action == "list":
            return selectors.ticket_filtered(
                workspace=workspace, agent=self.agent, filters=self.query
            )
        if self.action == "retrieve":
            return selectors.ticket_detail_list(workspace=workspace)
        if self.action == "restore":
            return Ticket.objects.for_workspace(workspace)
        return Ticket.objects.for_workspace(workspace).filter(deleted_at__isnull=True)

    def get_query_serializer_class(self) -> type[BaseSerializer] | None:
        return TicketFilterQuery if self.action == "list" else None

    def get_input_serializer_class(self) -> type[BaseSerializer] | None:
        if self.action == "partial_update":
            return TicketUpdateInput
        return super().get_input_serializer_class()

    def get_output_serializer_class(self) -> type[BaseSerializer] | None:
        if self.action == "list":
            return TicketOutput
        if self.action == "destroy":
            return None
        return super().get_output_serializer_class()

    def cursor_ordering(self) -> tuple[str, ...]:
        if self.action in ("comments", "events"):
            return ("created_at", "id")
        return cursor_ordering_for(self.query.get("ordering", DEFAULT_ORDERING))

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "ticket": self._ticket}

    @property
    def actor(self) -> Actor:
        return Actor.for_agent(self.agent)

    def ticket_output(self, ticket: Ticket, *, status_code: int = status.HTTP_200_OK) -> Response:
        """The ticket as GET /v1/tickets/:number shows it, read again after a change."""
        fresh = selectors.ticket_get(workspace=self.workspace, number=ticket.number)
        return self.output(fresh, status=status_code)

    # --- the ticket ----------------------------------------------------------------------

    def list(self, request: Request) -> Response:
        return paginated_tickets(self, self.get_queryset())

    @extend_schema(
        summary="Open a ticket",
        description="Channel `api`: the body is the agent's first public message. The "
        "customer is `customer_id` or `{email, name}` (found by email, or created).",
        examples=[TICKET_CREATE_EXAMPLE],
        responses={201: TicketDetailOutput},
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        refs = references(self.workspace, data)
        attachments = attachment_references(self.workspace, data["attachment_ids"])
        # The customer and the ticket commit together: a refused ticket leaves no customer.
        with transaction.atomic():
            if "customer_id" in data:
                customer = customer_reference(
                    self.workspace, data["customer_id"], field="customer_id"
                )
            else:
                customer, _ = customer_get_or_create(
                    workspace=self.workspace,
                    email=data["customer"]["email"],
                    name=data["customer"]["name"],
                )
            ticket = services.ticket_create(
                workspace=self.workspace,
                actor=self.actor,
                subject=data["subject"],
                customer=customer,
                body_text=data["body"],
                body_html=data["body_html"],
                channel=TicketChannel.API,
                priority=data["priority"],
                status=data.get("status"),
                tags=data["tags"],
                attachments=attachments,
                **refs,
            )
        response = self.ticket_output(ticket, status_code=status.HTTP_201_CREATED)
        response["Location"] = f"/v1/tickets/{ticket.number}"
        return response

    def retrieve(self, request: Request, number: str) -> Response:
        return self.output(self.get_object())

    def partial_update(self, request: Request, number: str) -> Response:
        ticket = self.get_object()
        data = self.validated_input()
        changes = {
            name: data[name] for name in ("subject", "status", "priority", "tags") if name in data
        }
        services.ticket_update(
            ticket=ticket, actor=self.actor, **changes, **references(self.workspace, data)
        )
        return self.ticket_output(ticket)

    def destroy(self, request: Request, number: str) -> Response:
        services.ticket_delete(ticket=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Restore a deleted ticket (admins)",
        request=None,
        responses={200: TicketDetailOutput},
    )
    @action(detail=True, methods=["post"], input_serializer_class=None)
    def restore(self, request: Request, number: str) -> Response:
        ticket = self.get_object()
        services.ticket_restore(ticket=ticket, actor=self.actor)
        return self.ticket_output(ticket)

    # --- the thread ----------------------------------------------------------------------

    @extend_schema(
        summary="Reply, add an internal note, or schedule a reply",
        description="A public reply (mailed to the customer), an internal note "
        "(`internal: true`), or with `send_at` a reply posted at that time. `status` sets "
        "the ticket's status in the same step. Light agents may add internal notes only.",
        examples=REPLY_EXAMPLES,
        responses={201: ReplyResult},
    )
    @action(
        detail=True,
        methods=["post"],
        input_serializer_class=ReplyInput,
        output_serializer_class=CommentOutput,
    )
    def reply(self, request: Request, number: str) -> Response:
        ticket = self.get_object()
        data = self.validated_input()
        if not data["internal"] or "status" in data:
            require_full_agent(request)
        attachments = attachment_references(self.workspace, data["attachment_ids"])
        if "send_at" in data:
            scheduled = services.comment_schedule(
                ticket=ticket,
                actor=self.actor,
                send_at=data["send_at"],
                body_text=data["body"],
                body_html=data["body_html"],
                internal=data["internal"],
                attachments=attachments,
            )
            body = ScheduledCommentOutput(scheduled, context=self.get_serializer_context()).data
        else:
            comment = services.comment_create(
                ticket=ticket,
                actor=self.actor,
                body_text=data["body"],
                body_html=data["body_html"],
                internal=data["internal"],
                via="api",
                attachments=attachments,
                status=data.get("status"),
            )
            body = CommentOutput(comment, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Assign to an agent and/or a team",
        description="`null` unassigns; a key left out stays as it is.",
        examples=[OpenApiExample("Assign", request_only=True, value={"agent_id": 12})],
    )
    @action(detail=True, methods=["post"], input_serializer_class=AssignInput)
    def assign(self, request: Request, number: str) -> Response:
        ticket = self.get_object()
        data = self.validated_input()
        services.ticket_assign(ticket=ticket, actor=self.actor, **references(self.workspace, data))
        return self.ticket_output(ticket)

    @extend_schema(
        summary="The ticket's thread",
        description="Public replies and internal notes, oldest first, with attachments.",
        responses={200: CommentOutput(many=True)},
    )
    @action(detail=True, methods=["get"], output_serializer_class=CommentOutput)
    def comments(self, request: Request, number: str) -> Response:
        self._ticket = self.get_object()
        return self.paginated(selectors.comment_list(ticket=self._ticket))

    @extend_schema(
        summary="The ticket's history",
        description="Who changed what, from what, to what, when; oldest first.",
        responses={200: TicketEventOutput(many=True)},
    )
    @action(detail=True, methods=["get"], output_serializer_class=TicketEventOutput)
    def events(self, request: Request, number: str) -> Response:
        self._ticket = self.get_object()
        return self.paginated(selectors.ticket_event_list(ticket=self._ticket))

    @extend_schema(
        summary="Merge into another ticket",
        description="Every comment, attachment, mail thread, pending scheduled reply and "
        "tag moves to the target, which is returned; this ticket is closed and points to it.",
        examples=[OpenApiExample("Merge", request_only=True, value={"into": 41})],
        responses={200: TicketDetailOutput},
    )
    @action(detail=True, methods=["post"], input_serializer_class=MergeInput)
    def merge(self, request: Request, number: str) -> Response:
        source = self.get_object()
        data = self.validated_input()
        target = (
            Ticket.objects.for_workspace(self.workspace)
            .filter(number=data["into"], deleted_at__isnull=True)
            .first()
        )
        if target is None:
            raise InvalidInput(
                "Unknown ticket in this workspace.", code="invalid_reference", field="into"
            )
        services.ticket_merge(source=source, target=target, actor=self.actor)
        return self.ticket_output(target)

    @extend_schema(
        summary="Change many tickets at once",
        description="Up to 100 ticket numbers; each ticket changes in its own transaction "
        "through the same service as PATCH, and the answer reports each one: a ticket that "
        "cannot change (missing, merged...) does not stop the others.",
        examples=[
            OpenApiExample(
                "Close three tickets and tag them",
                request_only=True,
                value={"ids": [3, 4, 9], "changes": {"status": "closed", "add_tags": ["spam"]}},
            )
        ],
        responses={200: BulkOutput},
    )
    @action(
        detail=False,
        methods=["post"],
        input_serializer_class=BulkInput,
        output_serializer_class=BulkOutput,
    )
    def bulk(self, request: Request) -> Response:
        data = self.validated_input()
        changes = data["changes"]
        fields = {name: changes[name] for name in ("status", "priority") if name in changes}
        results = services.tickets_bulk_update(
            workspace=self.workspace,
            actor=self.actor,
            numbers=data["ids"],
            add_tags=changes["add_tags"],
            remove_tags=changes["remove_tags"],
            **fields,
            **references(self.workspace, changes, prefix="changes."),
        )
        return self.output({"results": results})


@extend_schema_view(
    list=extend_schema(summary="Scheduled replies", description="Soonest first."),
    retrieve=extend_schema(summary="One scheduled reply"),
)
class ScheduledCommentViewSet(WorkspaceScopedViewSet):
    model = ScheduledComment
    output_serializer_class = ScheduledCommentOutput
    # The author of a scheduled internal note may cancel it, light agent or not; the
    # service refuses a light agent anything else.
    light_agent_actions = frozenset({"cancel"})
    # Soonest first.
    cursor_ordering = ("send_at", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[ScheduledComment]:
        queryset = selectors.scheduled_comment_list(workspace=workspace)
        if self.action == "list":
            if "ticket" in self.query:
                ticket = (
                    Ticket.objects.for_workspace(workspace)
                    .filter(number=self.query["ticket"], deleted_at__isnull=True)
                    .first()
                )
                if ticket is None:
                    raise InvalidInput(
                        "Unknown ticket in this workspace.",
                        code="invalid_reference",
                        field="ticket",
                    )
                queryset = queryset.filter(ticket=ticket)
            if self.query.get("status"):
                queryset = queryset.filter(status__in=self.query["status"])
        return queryset

    def get_query_serializer_class(self) -> type[BaseSerializer] | None:
        return ScheduledCommentQuery if self.action == "list" else None

    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(
        summary="Cancel a scheduled reply",
        description="Only while it is pending (409 `not_pending` after). Its author may "
        "cancel it; so may any full agent.",
        request=None,
        responses={200: ScheduledCommentOutput},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        scheduled = self.get_object()
        services.scheduled_comment_cancel(scheduled=scheduled, actor=Actor.for_agent(self.agent))
        return self.output(scheduled)
