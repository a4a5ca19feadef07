"""``/v1/business-hours``, ``/v1/sla-policies`` (members read, admins write) and
``/v1/tickets/:number/sla`` (the time left on a ticket's SLA).

A schedule is written whole with its weekly slots (weekday 0 = Monday, local times in the
schedule's zone, ``closes_at`` 23:59 meaning midnight) and holidays; a policy with its
targets per priority, in minutes of its business hours (none: calendar time), optionally
narrowed to a customer, company or category. Nested lists given in a PATCH replace the old.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from automation import selectors, services, sla
from automation.models import BusinessHours, SLAPolicy, Weekday
from enque.api.permissions import IsAdminRole
from enque.errors import NotFound
from tickets.models import Category, Ticket, TicketPriority
from workspaces.models import Company, Customer, Workspace
from workspaces.people_api.base import NO_CONTENT, PeopleViewSet
from workspaces.selectors import reference_in_workspace

ADMIN_WRITES = {
    "create": (IsAdminRole,),
    "partial_update": (IsAdminRole,),
    "destroy": (IsAdminRole,),
}

# --- Business hours ---------------------------------------------------------------------------


class SlotSerializer(serializers.Serializer):
    weekday = serializers.ChoiceField(choices=Weekday.choices, help_text="0 = Monday.")
    opens_at = serializers.TimeField(format="%H:%M")
    closes_at = serializers.TimeField(format="%H:%M", help_text="23:59 means midnight.")


class HolidaySerializer(serializers.Serializer):
    date = serializers.DateField()
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")


class BusinessHoursOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    timezone = serializers.CharField()
    is_default = serializers.BooleanField()
    slots = SlotSerializer(many=True, source="slots.all")
    holidays = HolidaySerializer(many=True, source="holidays.all")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class BusinessHoursCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    timezone = serializers.CharField(max_length=64, required=False, default="UTC")
    is_default = serializers.BooleanField(required=False, default=False)
    slots = SlotSerializer(many=True, required=False, default=list)
    holidays = HolidaySerializer(many=True, required=False, default=list)


class BusinessHoursUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    is_default = serializers.BooleanField(required=False)
    slots = SlotSerializer(many=True, required=False)
    holidays = HolidaySerializer(many=True, required=False)


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """Nested validated data as plain dicts (the services take dicts)."""
    for name in ("slots", "holidays", "targets"):
        if name in data:
            data[name] = [dict(item) for item in data[name]]
    return data


class BusinessHoursViewSet(PeopleViewSet):
    model = BusinessHours
    output_serializer_class = BusinessHoursOutput
    input_serializers = {
        "create": BusinessHoursCreateInput,
        "partial_update": BusinessHoursUpdateInput,
    }
    output_serializers = {"destroy": NO_CONTENT}
    action_permission_classes = ADMIN_WRITES
    cursor_ordering = ("name", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[BusinessHours]:
        return selectors.business_hours_list(workspace=workspace)

    def _fresh(self, hours: BusinessHours) -> BusinessHours:
        return self.get_workspace_queryset(self.workspace).get(pk=hours.pk)

    @extend_schema(summary="List business hours", description="With slots and holidays.")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Create business hours (admins)",
        description="`is_default: true` makes it the workspace's default (the previous "
        "default stops being one). Overlapping slots of a day are a 400.",
    )
    def create(self, request: Request) -> Response:
        hours = services.business_hours_create(
            workspace=self.workspace, actor=self.agent, **_plain(self.validated_input())
        )
        return self.output(self._fresh(hours), status=status.HTTP_201_CREATED)

    @extend_schema(summary="Business hours")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(
        summary="Change business hours (admins)",
        description="`slots` and `holidays`, when given, replace the old ones.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        hours = self.get_object()
        services.business_hours_update(
            workspace=self.workspace,
            actor=self.agent,
            hours=hours,
            **_plain(self.validated_input(partial=True)),
        )
        return self.output(self._fresh(hours))

    @extend_schema(
        summary="Delete business hours (admins)",
        description="SLA policies that counted in them count calendar time.",
        responses={204: None},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.business_hours_delete(
            workspace=self.workspace, actor=self.agent, hours=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- SLA policies -----------------------------------------------------------------------------


class TargetSerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=TicketPriority.choices)
    first_response_minutes = serializers.IntegerField(min_value=1, allow_null=True, default=None)
    resolution_minutes = serializers.IntegerField(min_value=1, allow_null=True, default=None)


class SLAPolicyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    business_hours_id = serializers.IntegerField(allow_null=True)
    customer_id = serializers.IntegerField(allow_null=True)
    company_id = serializers.IntegerField(allow_null=True)
    category_id = serializers.IntegerField(allow_null=True)
    is_active = serializers.BooleanField()
    position = serializers.IntegerField()
    targets = TargetSerializer(many=True, source="targets.all")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _ref_field() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, required=False, allow_null=True)


class SLAPolicyCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(
        max_length=10_000, required=False, allow_blank=True, default=""
    )
    business_hours_id = _ref_field()
    customer_id = _ref_field()
    company_id = _ref_field()
    category_id = _ref_field()
    is_active = serializers.BooleanField(required=False, default=True)
    position = serializers.IntegerField(min_value=0, required=False)
    targets = TargetSerializer(many=True)


class SLAPolicyUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    business_hours_id = _ref_field()
    customer_id = _ref_field()
    company_id = _ref_field()
    category_id = _ref_field()
    is_active = serializers.BooleanField(required=False)
    position = serializers.IntegerField(min_value=0, required=False)
    targets = TargetSerializer(many=True, required=False)


_POLICY_REFS = (
    ("business_hours_id", "business_hours", BusinessHours),
    ("customer_id", "customer", Customer),
    ("company_id", "company", Company),
    ("category_id", "category", Category),
)


class SLAPolicyViewSet(PeopleViewSet):
    model = SLAPolicy
    output_serializer_class = SLAPolicyOutput
    input_serializers = {"create": SLAPolicyCreateInput, "partial_update": SLAPolicyUpdateInput}
    output_serializers = {"destroy": NO_CONTENT}
    action_permission_classes = ADMIN_WRITES
    cursor_ordering = ("position", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[SLAPolicy]:
        return selectors.sla_policy_list(workspace=workspace)

    def _refs(self, data: dict[str, Any]) -> dict[str, Any]:
        refs = {}
        for field, name, model in _POLICY_REFS:
            if field in data:
                pk = data.pop(field)
                refs[name] = (
                    None
                    if pk is None
                    else reference_in_workspace(model, self.workspace, pk, field=field)
                )
        return refs

    def _fresh(self, policy: SLAPolicy) -> SLAPolicy:
        return self.get_workspace_queryset(self.workspace).get(pk=policy.pk)

    @extend_schema(summary="List SLA policies", description="In order, with their targets.")
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Create an SLA policy (admins)",
        description="The first active policy (by position) that fits a ticket and has a "
        "target for its priority applies.",
    )
    def create(self, request: Request) -> Response:
        data = _plain(self.validated_input())
        refs = self._refs(data)
        policy = services.sla_policy_create(
            workspace=self.workspace, actor=self.agent, **refs, **data
        )
        return self.output(self._fresh(policy), status=status.HTTP_201_CREATED)

    @extend_schema(summary="An SLA policy")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(
        summary="Change an SLA policy (admins)",
        description="`targets`, when given, replace the old ones.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        policy = self.get_object()
        data = _plain(self.validated_input(partial=True))
        refs = self._refs(data)
        services.sla_policy_update(
            workspace=self.workspace, actor=self.agent, policy=policy, **refs, **data
        )
        return self.output(self._fresh(policy))

    @extend_schema(summary="Delete an SLA policy (admins)", responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.sla_policy_delete(
            workspace=self.workspace, actor=self.agent, policy=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- A ticket's SLA ---------------------------------------------------------------------------


class TargetStatusOutput(serializers.Serializer):
    target_minutes = serializers.IntegerField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    met_at = serializers.DateTimeField(allow_null=True)
    breached = serializers.BooleanField()
    seconds_left = serializers.IntegerField(
        allow_null=True, help_text="Until the due time (negative: overdue); null if paused."
    )
    business_seconds_left = serializers.IntegerField(
        allow_null=True, help_text="Open time left in the policy's business hours."
    )


class PolicyRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class TicketSLAOutput(serializers.Serializer):
    ticket = serializers.IntegerField()
    policy = PolicyRefOutput(allow_null=True)
    paused = serializers.BooleanField(help_text="Pending: the clock is stopped.")
    paused_seconds = serializers.IntegerField(help_text="Business time spent paused.")
    first_response = TargetStatusOutput()
    resolution = TargetStatusOutput()


class TicketSLAViewSet(PeopleViewSet):
    """``GET /v1/tickets/:number/sla`` (routed in enque/api/urls.py as ``{"get": "show"}``:
    one object, not a list)."""

    model = Ticket
    output_serializer_class = TicketSLAOutput

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[Ticket]:
        return Ticket.objects.for_workspace(workspace).filter(deleted_at__isnull=True)

    @extend_schema(
        summary="A ticket's SLA: time left",
        description="The policy that applies, whether the clock is paused, and for the "
        "first response and the resolution: due time, met or breached, time left.",
    )
    def show(self, request: Request, number: str) -> Response:
        ticket = self.get_queryset().filter(number=int(number)).first()
        if ticket is None:
            raise NotFound("Ticket not found.")
        return self.output(sla.sla_status(ticket))
