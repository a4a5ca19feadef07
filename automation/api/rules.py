"""``/v1/workflows`` and ``/v1/automations``: rules, admins only.

A rule is written whole with its conditions and actions::

    {"name": "Invoices to Billing", "trigger": "ticket_created", "match": "any",
     "conditions": [{"field": "subject", "operator": "contains", "value": "invoice"}],
     "actions": [{"action_type": "set_team", "params": {"team_id": 3}},
                 {"action_type": "call_webhook", "params": {"url": "https://..."},
                  "secret": "s3cret"}]}

A PATCH with ``conditions`` or ``actions`` replaces them. A field, operator, value or
parameter that does not fit is a 400 naming it (``conditions.0.operator``,
``actions.1.params.team_id``); the fields, operators and parameters are listed in
``automation.conditions`` and ``automation.actions``. A webhook's ``secret`` is write-only
(``has_secret`` says whether one is set; a PATCH that omits it keeps the secret of the
same URL). ``POST /v1/automations/:id/test`` with ``{"ticket": <number>}`` is the dry run.
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
from automation.models import Automation, MatchMode, Trigger, Workflow
from enque.api.permissions import IsAdminRole
from enque.errors import InvalidInput
from tickets.models import Ticket
from workspaces.models import Workspace
from workspaces.people_api.base import NO_CONTENT, PeopleViewSet
from workspaces.selectors import reference_in_workspace

# --- Serializers ------------------------------------------------------------------------------


class WorkflowOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    stop_after_first_match = serializers.BooleanField()
    is_active = serializers.BooleanField()
    position = serializers.IntegerField()
    automation_count = serializers.IntegerField(required=False)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WorkflowCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    description = serializers.CharField(
        max_length=10_000, required=False, allow_blank=True, default=""
    )
    stop_after_first_match = serializers.BooleanField(required=False, default=False)
    is_active = serializers.BooleanField(required=False, default=True)
    position = serializers.IntegerField(min_value=0, required=False)


class WorkflowUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    trigger = serializers.ChoiceField(choices=Trigger.choices, required=False)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    stop_after_first_match = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)
    position = serializers.IntegerField(min_value=0, required=False)


class ConditionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    field = serializers.CharField()
    operator = serializers.CharField()
    value = serializers.JSONField(allow_null=True)


class ActionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    action_type = serializers.CharField()
    params = serializers.DictField()
    has_secret = serializers.SerializerMethodField(
        help_text="call_webhook: whether a signing secret is set (it is never shown)."
    )

    def get_has_secret(self, action: Any) -> bool:
        return bool(action.secret)


class AutomationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    match = serializers.ChoiceField(choices=MatchMode.choices)
    workflow_id = serializers.IntegerField(allow_null=True)
    is_active = serializers.BooleanField()
    position = serializers.IntegerField()
    run_count = serializers.IntegerField()
    last_run_at = serializers.DateTimeField(allow_null=True)
    conditions = ConditionOutput(many=True, source="conditions.all")
    actions = ActionOutput(many=True, source="actions.all")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ConditionInput(serializers.Serializer):
    field = serializers.CharField(max_length=32)
    operator = serializers.CharField(max_length=16)
    value = serializers.JSONField(required=False, allow_null=True, default=None)


class ActionInput(serializers.Serializer):
    action_type = serializers.CharField(max_length=24)
    params = serializers.DictField(required=False, default=dict)
    secret = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        trim_whitespace=False,
        write_only=True,
        help_text="call_webhook only: the HMAC-SHA256 signing secret (write-only).",
    )


class AutomationCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    match = serializers.ChoiceField(choices=MatchMode.choices, required=False, default="all")
    description = serializers.CharField(
        max_length=10_000, required=False, allow_blank=True, default=""
    )
    workflow_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False, default=True)
    position = serializers.IntegerField(min_value=0, required=False)
    conditions = ConditionInput(many=True, required=False, default=list)
    actions = ActionInput(many=True)


class AutomationUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    trigger = serializers.ChoiceField(choices=Trigger.choices, required=False)
    match = serializers.ChoiceField(choices=MatchMode.choices, required=False)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    workflow_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)
    position = serializers.IntegerField(min_value=0, required=False)
    conditions = ConditionInput(many=True, required=False)
    actions = ActionInput(many=True, required=False)


class AutomationListQuery(serializers.Serializer):
    trigger = serializers.ChoiceField(choices=Trigger.choices, required=False)
    workflow = serializers.IntegerField(min_value=1, required=False, help_text="A workflow id.")


class DryRunInput(serializers.Serializer):
    ticket = serializers.IntegerField(min_value=1, help_text="The ticket's number.")


class ConditionResultOutput(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    field = serializers.CharField()
    operator = serializers.CharField()
    value = serializers.JSONField(allow_null=True)
    actual = serializers.JSONField(allow_null=True, help_text="The ticket's value.")
    matched = serializers.BooleanField()


class ActionPreviewOutput(serializers.Serializer):
    id = serializers.IntegerField()
    action_type = serializers.CharField()
    params = serializers.DictField()
    would = serializers.DictField(required=False, help_text="What it would do.")
    error = serializers.CharField(required=False, help_text="Why it could not run.")


class DryRunOutput(serializers.Serializer):
    automation = serializers.IntegerField()
    ticket = serializers.IntegerField()
    match = serializers.CharField()
    matched = serializers.BooleanField(help_text="Whether the rule would fire now.")
    conditions = ConditionResultOutput(many=True)
    actions = ActionPreviewOutput(many=True)
    already_fired = serializers.BooleanField(
        help_text="Time rules: already fired for this ticket in the current window."
    )
    window_key = serializers.CharField(required=False)


class RunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    ticket = serializers.IntegerField(source="ticket.number")
    trigger = serializers.CharField()
    window_key = serializers.CharField()
    status = serializers.CharField()
    actions = serializers.ListField(child=serializers.DictField())
    errors = serializers.ListField(child=serializers.DictField())
    chain = serializers.ListField(child=serializers.IntegerField())
    created_at = serializers.DateTimeField()


# --- Views ------------------------------------------------------------------------------------


class WorkflowViewSet(PeopleViewSet):
    model = Workflow
    permission_classes = (IsAdminRole,)
    output_serializer_class = WorkflowOutput
    input_serializers = {"create": WorkflowCreateInput, "partial_update": WorkflowUpdateInput}
    output_serializers = {"destroy": NO_CONTENT}
    cursor_ordering = ("position", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Workflow]:
        return selectors.workflow_list(workspace=workspace)

    @extend_schema(summary="List workflows (admins)", description="In their order.")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(summary="Create a workflow (admins)")
    def create(self, request: Request) -> Response:
        workflow = services.workflow_create(
            workspace=self.workspace, actor=self.agent, **self.validated_input()
        )
        return self.output(workflow, status=status.HTTP_201_CREATED)

    @extend_schema(summary="A workflow (admins)")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(summary="Change a workflow (admins)")
    def partial_update(self, request: Request, pk: str) -> Response:
        workflow = self.get_object()
        services.workflow_update(
            workspace=self.workspace,
            actor=self.agent,
            workflow=workflow,
            **self.validated_input(partial=True),
        )
        return self.output(workflow)

    @extend_schema(
        summary="Delete a workflow (admins)",
        description="Its automations stay, outside any workflow.",
        responses={204: None},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.workflow_delete(
            workspace=self.workspace, actor=self.agent, workflow=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class AutomationViewSet(PeopleViewSet):
    model = Automation
    permission_classes = (IsAdminRole,)
    output_serializer_class = AutomationOutput
    input_serializers = {
        "create": AutomationCreateInput,
        "partial_update": AutomationUpdateInput,
        "test": DryRunInput,
    }
    output_serializers = {"destroy": NO_CONTENT, "test": DryRunOutput, "runs": RunOutput}
    query_serializers = {"list": AutomationListQuery}
    paginated_actions = frozenset({"runs"})
    cursor_ordering = ("position", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Automation]:
        return selectors.automation_list(
            workspace=workspace,
            trigger=self.query.get("trigger"),
            workflow=self.query.get("workflow"),
        )

    def _workflow(self, data: dict[str, Any]) -> dict[str, Any]:
        if "workflow_id" not in data:
            return {}
        pk = data.pop("workflow_id")
        if pk is None:
            return {"workflow": None}
        return {
            "workflow": reference_in_workspace(Workflow, self.workspace, pk, field="workflow_id")
        }

    def _fresh(self, automation: Automation) -> Automation:
        return self.get_workspace_queryset(self.workspace).get(pk=automation.pk)

    @extend_schema(
        summary="List automations (admins)",
        description="With their conditions and actions; filter by `trigger` or `workflow`.",
    )
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Create an automation (admins)",
        description="A field, operator, value or parameter that does not fit is a 400 naming "
        "it, e.g. `conditions.0.operator`.",
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        workflow = self._workflow(data)
        automation = services.automation_create(
            workspace=self.workspace, actor=self.agent, **workflow, **data
        )
        return self.output(self._fresh(automation), status=status.HTTP_201_CREATED)

    @extend_schema(summary="An automation (admins)")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(
        summary="Change an automation (admins)",
        description="`conditions` and `actions`, when given, replace the old ones.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        automation = self.get_object()
        data = self.validated_input(partial=True)
        workflow = self._workflow(data)
        services.automation_update(
            workspace=self.workspace, actor=self.agent, automation=automation, **workflow, **data
        )
        return self.output(self._fresh(automation))

    @extend_schema(summary="Delete an automation (admins)", responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.automation_delete(
            workspace=self.workspace, actor=self.agent, automation=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Dry run on a ticket (admins)",
        description="Which conditions match the ticket with this number now, and what each "
        "action would do; nothing changes. An unknown number is a 400 `invalid_reference`.",
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str) -> Response:
        automation = self.get_object()
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
        result = services.automation_test(
            workspace=self.workspace, actor=self.agent, automation=automation, ticket=ticket
        )
        return Response(result)

    @extend_schema(
        summary="An automation's firings (admins)",
        description="Newest first: the ticket, the actions done and the errors.",
    )
    @action(detail=True, methods=["get"])
    def runs(self, request: Request, pk: str) -> Response:
        automation = self.get_object()
        self.cursor_ordering = ("-created_at", "-id")
        return self.paginated(selectors.automation_runs(automation=automation))
