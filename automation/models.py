"""Rules, workflows, SLA policies and business hours."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower

from enque.encryption import EncryptedTextField
from tickets.models import CannedReply, Category, Ticket, TicketPriority
from workspaces.models import Agent, Company, Customer, Team, TenantModel


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
    # Parameters by type, e.g. {"status": "open"}, {"team_id": 3}, {"url": ...}; validated
    # by automation.actions (the parameter names of each type are listed there).
    params = models.JSONField(default=dict, blank=True)
    # call_webhook's signing secret: write-only in the API and the admin, encrypted at rest,
    # kept out of ``params`` so it never shows up where parameters are displayed.
    secret = EncryptedTextField(blank=True)
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


# --- What the engine records ------------------------------------------------------------------


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    # Some actions failed, the others were done.
    PARTIAL = "partial", "Partly failed"
    FAILED = "failed", "Failed"


class AutomationRun(TenantModel):
    """One firing of a rule on a ticket: what it did and what failed.

    Time rules fire once per ticket per condition window: ``window_key`` names the window
    (automation.engine.window_key) and the partial unique constraint makes the claim — the
    engine inserts the run before acting, so two beat workers cannot both fire. Event rules
    fire on every matching event and leave the key empty.
    """

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="runs")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="automation_runs")
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    window_key = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    # [{"action_type", "ok", "detail" | "error"}], in the order the actions ran.
    actions = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)
    # The rules whose changes led to this firing (tickets.actors.Actor.automation_chain).
    chain = models.JSONField(default=list, blank=True)

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "ticket", "window_key"],
                condition=~Q(window_key=""),
                name="automation_run_once_per_window",
            ),
        ]
        indexes = [
            # GET /v1/automations/:id/runs, newest first.
            models.Index(fields=["automation", "-created_at"], name="automation_run_rule_idx"),
            # A ticket's firings (its history panel, the dry run's "already fired").
            models.Index(fields=["ticket", "created_at"], name="automation_run_ticket_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.automation_id} on ticket {self.ticket_id}: {self.status}"


class WebhookStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(TenantModel):
    """One webhook call of a rule, with its retries (automation.webhooks).

    The body is stored exactly as signed and sent, and the secret is copied (encrypted), so
    editing or deleting the rule does not change a delivery already queued.
    """

    automation = models.ForeignKey(
        Automation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        AutomationRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_deliveries",
    )
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    url = models.TextField()
    body = models.TextField()
    secret = EncryptedTextField(blank=True)
    status = models.CharField(
        max_length=10, choices=WebhookStatus.choices, default=WebhookStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The every-minute sweep re-enqueues pending deliveries whose task was lost.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Webhook {self.pk}: {self.status}"


class AssignmentCursor(TenantModel):
    """Where round-robin assignment stands in a team: the agent who got the last ticket."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="+")
    last_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.team_id}: {self.last_agent_id}"


class TicketSLA(TenantModel):
    """A ticket's SLA clock (automation.sla): the policy and targets that apply, the time
    spent paused, and which targets were breached or warned about (each once)."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="sla")
    policy = models.ForeignKey(
        SLAPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(null=True, blank=True)
    # Set while the clock is stopped (pending, resolved, closed).
    paused_at = models.DateTimeField(null=True, blank=True)
    # Business seconds spent paused so far: each due time is pushed back by this much.
    paused_seconds = models.PositiveBigIntegerField(default=0)
    first_response_breached_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)
    first_response_warned_at = models.DateTimeField(null=True, blank=True)
    resolution_warned_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        verbose_name = "ticket SLA"

    def __str__(self) -> str:
        return f"SLA of ticket {self.ticket_id}"


# --- Macros -----------------------------------------------------------------------------------


class Macro(TenantModel):
    """A canned reply plus ticket changes, applied by an agent in one step, as one history
    entry. Shared (``owner`` null; admins manage it) or personal to its owner."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    canned_reply = models.ForeignKey(
        CannedReply, null=True, blank=True, on_delete=models.SET_NULL, related_name="macros"
    )
    # [{"action_type": "set_status", "params": {"status": "pending"}}, ...]: the ticket
    # actions of automation.actions.MACRO_ACTIONS, validated by automation.services.
    actions = models.JSONField(default=list, blank=True)
    owner = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="macros"
    )
    usage_count = models.PositiveIntegerField(default=0)
    position = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                "workspace",
                Lower("name"),
                condition=Q(owner__isnull=True),
                name="macro_shared_name_unique",
            ),
            models.UniqueConstraint(
                "owner",
                Lower("name"),
                condition=Q(owner__isnull=False),
                name="macro_personal_name_unique",
            ),
        ]
        indexes = [
            # The macro picker: the shared macros and the caller's own, in order.
            models.Index(fields=["workspace", "owner", "position"], name="macro_ws_owner_idx"),
        ]

    def __str__(self) -> str:
        return self.name


# --- Notifications ----------------------------------------------------------------------------


class NotificationKind(models.TextChoices):
    ASSIGNED = "assigned", "A ticket was assigned to me"
    CUSTOMER_REPLIED = "customer_replied", "A customer replied on my ticket"
    MENTIONED = "mentioned", "I was @mentioned in an internal note"
    SLA_WARNING = "sla_warning", "An SLA target of my ticket is about to be breached"
    AUTOMATION = "automation", "A rule notified me"
    # Email only.
    DAILY_DIGEST = "daily_digest", "Daily digest of my outstanding tickets"
    WEEKLY_DIGEST = "weekly_digest", "Weekly summary"


DIGEST_KINDS = (NotificationKind.DAILY_DIGEST, NotificationKind.WEEKLY_DIGEST)


class Notification(TenantModel):
    """An in-app notification of one agent (``/v1/notifications``)."""

    recipient = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    # {"message": "...", ...}: small, JSON, shown as is.
    data = models.JSONField(default=dict, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        indexes = [
            # An agent's notifications, newest first (the list and its cursor).
            models.Index(
                fields=["recipient", "-created_at", "-id"], name="notification_recipient_idx"
            ),
            # The unread badge and "mark all read".
            models.Index(
                fields=["recipient"],
                condition=Q(read_at__isnull=True),
                name="notification_unread_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}"


class NotificationPreference(TenantModel):
    """An agent's choice for one kind; a kind without a row uses
    automation.notifications.DEFAULT_PREFERENCES."""

    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=True)

    class Meta(TenantModel.Meta):
        ordering = ["agent", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "kind"], name="notification_pref_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}: {self.kind}"


class DigestStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    # Nothing to report for that period: no mail, and no second look.
    SKIPPED = "skipped", "Skipped"


class DigestDelivery(TenantModel):
    """A digest of one agent for one period: the unique constraint is the claim, so each
    goes out once however often beat ticks and however many workers run it."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    # The day (daily) or the Monday (weekly) the digest covers, in the workspace's zone.
    period_start = models.DateField()
    status = models.CharField(
        max_length=10, choices=DigestStatus.choices, default=DigestStatus.SENDING
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        verbose_name_plural = "digest deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "kind", "period_start"], name="digest_once_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.period_start} for {self.agent_id}"
