"""Rules, workflows, SLA policies and business hours."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower

from tickets.models import Category, TicketPriority
from workspaces.models import Company, Customer, TenantModel


class Trigger(models.TextChoices):
    TICKET_CREATED = "ticket_created", "Ticket created"
    TICKET_UPDATED = "ticket_updated", "Ticket updated"
    CUSTOMER_REPLIED = "customer_replied", "Customer replied"
    AGENT_REPLIED = "agent_replied", "Agent replied"
    NOTE_ADDED = "note_added", "Internal note added"
    # Evaluated every minute by beat against every open ticket of the workspace.
    TIME = "time", "Time-based"


class MatchMode(models.TextChoices):
    ALL = "all", "All conditions"
    ANY = "any", "Any condition"


class Workflow(TenantModel):
    """A named, ordered group of rules for one trigger."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    stop_after_first_match = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="workflow_name_ci_unique"),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "trigger", "is_active"], name="workflow_ws_trigger_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Automation(TenantModel):
    """A rule: on a trigger, when the conditions match, run the actions in order."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    workflow = models.ForeignKey(
        Workflow, null=True, blank=True, on_delete=models.SET_NULL, related_name="automations"
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    match = models.CharField(max_length=3, choices=MatchMode.choices, default=MatchMode.ALL)
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)
    run_count = models.PositiveIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]
        indexes = [
            # The engine loads a workspace's active rules for one trigger on every event.
            models.Index(
                fields=["workspace", "trigger", "is_active"], name="automation_ws_trigger_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ConditionField(models.TextChoices):
    SUBJECT = "subject", "Subject"
    BODY = "body", "Body"
    FROM_ADDRESS = "from_address", "From address"
    FROM_DOMAIN = "from_domain", "From domain"
    MAILBOX = "mailbox", "Mailbox"
    CHANNEL = "channel", "Channel"
    STATUS = "status", "Status"
    PRIORITY = "priority", "Priority"
    ASSIGNEE = "assignee", "Assignee"
    TEAM = "team", "Team"
    CATEGORY = "category", "Category"
    TAGS = "tags", "Tags"
    CUSTOMER = "customer", "Customer"
    COMPANY = "company", "Company"
    BUSINESS_HOURS = "business_hours", "Within business hours"
    HOURS_SINCE_CREATED = "hours_since_created", "Hours since created"
    HOURS_SINCE_UPDATED = "hours_since_updated", "Hours since updated"
    HOURS_SINCE_CUSTOMER_REPLY = "hours_since_customer_reply", "Hours since customer reply"
    HOURS_SINCE_AGENT_REPLY = "hours_since_agent_reply", "Hours since agent reply"
    SLA_DUE_WITHIN_HOURS = "sla_due_within_hours", "SLA due within (hours)"
    SLA_BREACHED = "sla_breached", "SLA breached"


class ConditionOperator(models.TextChoices):
    IS = "is", "is"
    IS_NOT = "is_not", "is not"
    CONTAINS = "contains", "contains"
    NOT_CONTAINS = "not_contains", "does not contain"
    MATCHES = "matches", "matches (regular expression)"
    IN = "in", "is one of"
    NOT_IN = "not_in", "is none of"
    GREATER_THAN = "gt", "greater than"
    LESS_THAN = "lt", "less than"
    IS_SET = "is_set", "is set"
    IS_NOT_SET = "is_not_set", "is not set"


class AutomationCondition(TenantModel):
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="conditions")
    field = models.CharField(max_length=32, choices=ConditionField.choices)
    operator = models.CharField(max_length=16, choices=ConditionOperator.choices)
    # A string, number, boolean or list of ids, by field; validated by automation.services.
    value = models.JSONField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.field} {self.operator} {self.value!r}"


class ActionType(models.TextChoices):
    SET_STATUS = "set_status", "Set status"
    SET_PRIORITY = "set_priority", "Set priority"
    SET_CATEGORY = "set_category", "Set category"
    SET_TEAM = "set_team", "Set team"
    SET_ASSIGNEE = "set_assignee", "Assign to an agent"
    ASSIGN_ROUND_ROBIN = "assign_round_robin", "Assign round-robin within a team"
    ASSIGN_LEAST_LOADED = "assign_least_loaded", "Assign to the least-loaded agent of a team"
    ADD_TAGS = "add_tags", "Add tags"
    REMOVE_TAGS = "remove_tags", "Remove tags"
    ADD_NOTE = "add_note", "Add an internal note"
    SEND_CANNED_REPLY = "send_canned_reply", "Send a canned reply"
    NOTIFY_AGENTS = "notify_agents", "Notify agents"
    CALL_WEBHOOK = "call_webhook", "Call a webhook"


class AutomationAction(TenantModel):
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="actions")
    action_type = models.CharField(max_length=24, choices=ActionType.choices)
    # Parameters by type, e.g. {"status": "open"}, {"team_id": 3}, {"url": ..., "secret": ...}.
    params = models.JSONField(default=dict, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.get_action_type_display()


class BusinessHours(TenantModel):
    """A weekly schedule in a time zone, with holidays: the SLA clock only runs inside it."""

    name = models.CharField(max_length=120)
    timezone = models.CharField(max_length=64, default="UTC")
    is_default = models.BooleanField(default=False)

    class Meta(TenantModel.Meta):
        ordering = ["name", "id"]
        verbose_name_plural = "business hours"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"],
                condition=Q(is_default=True),
                name="business_hours_one_default",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.timezone})"


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class BusinessHoursSlot(TenantModel):
    """One opening interval on one weekday, in the schedule's time zone."""

    business_hours = models.ForeignKey(
        BusinessHours, on_delete=models.CASCADE, related_name="slots"
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens_at = models.TimeField()
    closes_at = models.TimeField()

    class Meta(TenantModel.Meta):
        ordering = ["weekday", "opens_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(opens_at__lt=F("closes_at")), name="slot_opens_before_closing"
            ),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="slot_weekday_range"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}-{self.closes_at:%H:%M}"


class Holiday(TenantModel):
    business_hours = models.ForeignKey(
        BusinessHours, on_delete=models.CASCADE, related_name="holidays"
    )
    date = models.DateField()
    name = models.CharField(max_length=120, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["business_hours", "date"], name="holiday_unique_date"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()


class SLAPolicy(TenantModel):
    """First-response and resolution targets; the first active policy that fits applies."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    # Null: targets count calendar time.
    business_hours = models.ForeignKey(
        BusinessHours, null=True, blank=True, on_delete=models.SET_NULL, related_name="sla_policies"
    )
    # Optional narrowing; a policy with none of these applies to every ticket.
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"

    def __str__(self) -> str:
        return self.name


class SLATarget(TenantModel):
    policy = models.ForeignKey(SLAPolicy, on_delete=models.CASCADE, related_name="targets")
    priority = models.CharField(max_length=10, choices=TicketPriority.choices)
    first_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["policy", "priority"]
        verbose_name = "SLA target"
        constraints = [
            models.UniqueConstraint(fields=["policy", "priority"], name="sla_target_per_priority"),
        ]

    def __str__(self) -> str:
        return f"{self.policy}: {self.priority}"
