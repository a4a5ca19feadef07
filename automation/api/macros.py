"""``/v1/macros``: a canned reply plus ticket changes, applied in one step.

Shared macros (``shared: true``) are the admins' to write; a personal one is its owner's
alone (anyone else gets a 404). Any member lists the shared ones and their own.
``POST /v1/macros/:id/preview`` with ``{"ticket": <number>}`` shows what would change (the
fields old → new, the notes, the rendered reply) without changing anything;
``POST /v1/macros/:id/apply`` does it, as one entry in the ticket's history. Actions are
those of ``automation.actions.MACRO_ACTIONS``; ``set_assignee`` also takes ``"me"``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from automation import selectors, services
from automation.models import Macro
from enque.errors import InvalidInput
from tickets.models import CannedReply, Ticket
from workspaces.models import Workspace
from workspaces.people_api.base import NO_CONTENT, PeopleViewSet
from workspaces.selectors import reference_in_workspace


class MacroActionSerializer(serializers.Serializer):
    action_type = serializers.CharField(max_length=24)
    params = serializers.DictField(required=False, default=dict)


class CannedRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()


class OwnerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MacroOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    canned_reply = CannedRefOutput(allow_null=True)
    actions = MacroActionSerializer(many=True)
    shared = serializers.SerializerMethodField()
    owner = OwnerOutput(allow_null=True)
    usage_count = serializers.IntegerField()
    position = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_shared(self, macro: Macro) -> bool:
        return macro.owner_id is None


class MacroCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        max_length=10_000, required=False, allow_blank=True, default=""
    )
    canned_reply_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    actions = MacroActionSerializer(many=True, required=False, default=list)
    shared = serializers.BooleanField(
        required=False, default=False, help_text="true: for everyone (admins only)."
    )
    position = serializers.IntegerField(min_value=0, required=False)


class MacroUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    canned_reply_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    actions = MacroActionSerializer(many=True, required=False)
    shared = serializers.BooleanField(required=False)
    position = serializers.IntegerField(min_value=0, required=False)


class MacroListQuery(serializers.Serializer):
    q = serializers.CharField(max_length=200, required=False, help_text="Search names.")
    scope = serializers.ChoiceField(
        choices=["all", "shared", "personal"], required=False, default="all"
    )


class MacroTicketInput(serializers.Serializer):
    ticket = serializers.IntegerField(min_value=1, help_text="The ticket's number.")


class ReplyPreviewOutput(serializers.Serializer):
    body = serializers.CharField()
    unknown_placeholders = serializers.ListField(child=serializers.CharField())


class MacroPreviewOutput(serializers.Serializer):
    macro = serializers.IntegerField()
    ticket = serializers.IntegerField()
    changes = serializers.DictField(
        child=serializers.DictField(), help_text='{"status": {"old": "new", "new": "pending"}}'
    )
    notes = serializers.ListField(child=serializers.CharField())
    reply = ReplyPreviewOutput(allow_null=True)
    errors = serializers.ListField(child=serializers.DictField())


class MacroApplyOutput(serializers.Serializer):
    macro = serializers.IntegerField()
    ticket = serializers.IntegerField()
    changed = serializers.ListField(child=serializers.CharField())
    comments = serializers.ListField(child=serializers.IntegerField())
    event = serializers.IntegerField(help_text="The one history entry (macro_applied).")


class MacroViewSet(PeopleViewSet):
    model = Macro
    output_serializer_class = MacroOutput
    input_serializers = {
        "create": MacroCreateInput,
        "partial_update": MacroUpdateInput,
        "preview": MacroTicketInput,
        "apply": MacroTicketInput,
    }
    output_serializers = {
        "destroy": NO_CONTENT,
        "preview": MacroPreviewOutput,
        "apply": MacroApplyOutput,
    }
    query_serializers = {"list": MacroListQuery}
    # A preview changes nothing; applying is refused to light agents (403 light_agent).
    light_agent_actions = frozenset({"preview"})
    cursor_ordering = ("position", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Macro]:
        return selectors.macros_for(
            agent=self.agent, scope=self.query.get("scope", "all"), q=self.query.get("q", "")
        )

    def _canned(self, data: dict[str, Any]) -> dict[str, Any]:
        if "canned_reply_id" not in data:
            return {}
        pk = data.pop("canned_reply_id")
        if pk is None:
            return {"canned_reply": None}
        return {
            "canned_reply": reference_in_workspace(
                CannedReply, self.workspace, pk, field="canned_reply_id"
            )
        }

    def _ticket(self) -> Ticket:
        number = self.validated_input()["ticket"]
        ticket = (
            Ticket.objects.for_workspace(self.workspace)
            .filter(number=number, deleted_at__isnull=True)
            .select_related("customer", "workspace")
            .first()
        )
        if ticket is None:
            raise InvalidInput(
                "Unknown ticket in this workspace.", code="invalid_reference", field="ticket"
            )
        return ticket

    @staticmethod
    def _plain(data: dict[str, Any]) -> dict[str, Any]:
        if "actions" in data:
            data["actions"] = [dict(a) for a in data["actions"]]
        return data

    @extend_schema(summary="List macros", description="The shared ones and the caller's own.")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Create a macro",
        description="Shared (`shared: true`, admins only) or personal to the caller.",
    )
    def create(self, request: Request) -> Response:
        data = self._plain(self.validated_input())
        canned = self._canned(data)
        macro = services.macro_create(workspace=self.workspace, actor=self.agent, **canned, **data)
        return self.output(macro, status=status.HTTP_201_CREATED)

    @extend_schema(summary="A macro")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(summary="Change a macro", description="A shared macro takes an admin.")
    def partial_update(self, request: Request, pk: str) -> Response:
        macro = self.get_object()
        data = self._plain(self.validated_input(partial=True))
        canned = self._canned(data)
        services.macro_update(
            workspace=self.workspace, actor=self.agent, macro=macro, **canned, **data
        )
        return self.output(macro)

    @extend_schema(summary="Delete a macro", responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.macro_delete(workspace=self.workspace, actor=self.agent, macro=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Preview a macro on a ticket",
        description="The fields it would change (old → new), its notes and its reply, "
        "rendered for the caller; nothing changes.",
    )
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str) -> Response:
        macro = self.get_object()
        result = services.macro_preview(
            workspace=self.workspace, actor=self.agent, macro=macro, ticket=self._ticket()
        )
        return self.output(result)

    @extend_schema(
        summary="Apply a macro to a ticket",
        description="Every change in one step and one history entry (`macro_applied`).",
    )
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str) -> Response:
        macro = self.get_object()
        result = services.macro_apply(
            workspace=self.workspace, actor=self.agent, macro=macro, ticket=self._ticket()
        )
        return self.output(result)
