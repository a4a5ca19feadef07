"""Tickets and their thread, history, attachments and the settings agents use on them."""

from __future__ import annotations

import uuid
from pathlib import PurePath
from typing import Any

from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from workspaces.models import Agent, Company, Customer, Team, TenantModel, TenantQuerySet


class TicketStatus(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    PENDING = "pending", "Pending (waiting on customer)"
    ON_HOLD = "on_hold", "On hold"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


# Statuses in which a ticket still needs work; reports and inbox counts use this set.
ACTIVE_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.ON_HOLD)
DONE_STATUSES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class TicketPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class TicketChannel(models.TextChoices):
    EMAIL = "email", "Email"
    WEB = "web", "Web"
    API = "api", "API"


class Category(TenantModel):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["name", "id"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="category_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Tag(TenantModel):
    name = models.CharField(max_length=64)
    color = models.CharField(max_length=7, blank=True, help_text="Hex colour, e.g. #3b82f6.")

    class Meta(TenantModel.Meta):
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="tag_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class TicketCounter(TenantModel):
    """The per-workspace ticket number sequence.

    ``tickets.services.allocate_ticket_number`` increments ``last_number`` with an UPDATE
    inside the ticket's transaction: the row lock serialises concurrent creations in one
    workspace (and only there), and a rolled-back creation gives its number back, so numbers
    have neither duplicates nor gaps.
    """

    last_number = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="ticket_counter_one_per_workspace"),
        ]

    def __str__(self) -> str:
        return f"#{self.last_number}"


class TicketManager(models.Manager.from_queryset(TenantQuerySet)):
    """Tickets without their search document, which only ``WHERE`` clauses read: loading
    it would carry every word of the thread into each list row. A ``save()`` of a ticket
    loaded this way leaves the document alone (Django writes only loaded fields)."""

    def get_queryset(self) -> TenantQuerySet:
        return super().get_queryset().defer("search_document")


class Ticket(TenantModel):
    number = models.PositiveIntegerField(editable=False)
    subject = models.CharField(max_length=998)
    status = models.CharField(max_length=10, choices=TicketStatus.choices, default=TicketStatus.NEW)
    priority = models.CharField(
        max_length=10, choices=TicketPriority.choices, default=TicketPriority.NORMAL
    )
    channel = models.CharField(max_length=10, choices=TicketChannel.choices)
    # RESTRICT, not PROTECT: a customer with tickets cannot be deleted on their own, but
    # deleting the whole workspace still cascades through both.
    customer = models.ForeignKey(Customer, on_delete=models.RESTRICT, related_name="tickets")
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    assignee = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    mailbox = models.ForeignKey(
        "integrations.MailboxConnection",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
    )
    tags = models.ManyToManyField(Tag, through="TicketTag", related_name="tickets", blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_tickets"
    )

    # Stored, not recomputed: reports and SLA checks read these directly.
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    last_customer_reply_at = models.DateTimeField(null=True, blank=True)
    last_agent_reply_at = models.DateTimeField(null=True, blank=True)
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True)
    # Soft delete: hidden from every list, restorable by an admin.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The subject and thread's words for ``q=`` (tickets/search.py); PostgreSQL only.
    search_document = SearchVectorField(null=True, editable=False)

    objects = TicketManager()

    class Meta(TenantModel.Meta):
        # Related lookups (comment.ticket) defer the search document too.
        base_manager_name = "objects"
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "number"], name="ticket_number_unique"),
        ]
        indexes = [
            # Inbox views: a workspace's tickets in some statuses, most recently updated first.
            models.Index(
                fields=["workspace", "status", "-updated_at"], name="ticket_ws_status_upd_idx"
            ),
            # "My open tickets" and per-agent counts.
            models.Index(fields=["workspace", "assignee", "status"], name="ticket_ws_assignee_idx"),
            # Per-team views and counts.
            models.Index(fields=["workspace", "team", "status"], name="ticket_ws_team_idx"),
            # A customer's other tickets (ticket side panel, customer page).
            models.Index(fields=["workspace", "customer"], name="ticket_ws_customer_idx"),
            # The "all tickets" list and incremental export, ordered by last change.
            models.Index(fields=["workspace", "-updated_at", "-id"], name="ticket_ws_updated_idx"),
            # GET /v1/tickets?ordering=created_at / -created_at (cursor pages).
            models.Index(fields=["workspace", "-created_at", "-id"], name="ticket_ws_created_idx"),
            # An agent's and a team's tickets in list order (?assignee= / ?team=, the inbox's
            # "mine" and team views): a range scan of the page instead of walking every
            # ticket of the workspace until 25 of theirs turn up (bench/run.py, 1M tickets).
            models.Index(
                fields=["workspace", "assignee", "-updated_at", "-id"],
                name="ticket_ws_assignee_upd_idx",
            ),
            models.Index(
                fields=["workspace", "team", "-updated_at", "-id"], name="ticket_ws_team_upd_idx"
            ),
            # SLA checks scan tickets whose deadline passes soon.
            models.Index(
                fields=["sla_due_at"],
                condition=Q(sla_due_at__isnull=False, resolved_at__isnull=True),
                name="ticket_sla_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATUSES


class TicketTag(TenantModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="ticket_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="ticket_tags")

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["ticket", "tag"], name="ticket_tag_unique"),
        ]
        indexes = [
            # Filtering a workspace's tickets by tag.
            models.Index(fields=["workspace", "tag"], name="ticket_tag_ws_tag_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.tag_id}"


class TicketBody(TenantModel):
    """The ticket's first message as received: large, so kept apart from the hot row."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="body")
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)

    class Meta(TenantModel.Meta):
        verbose_name_plural = "ticket bodies"

    def __str__(self) -> str:
        return f"Body of ticket {self.ticket_id}"


class AuthorType(models.TextChoices):
    AGENT = "agent", "Agent"
    CUSTOMER = "customer", "Customer"
    SYSTEM = "system", "System"


class CommentVia(models.TextChoices):
    WEB = "web", "Web"
    API = "api", "API"
    EMAIL = "email", "Email"
    AUTOMATION = "automation", "Automation"
    SYSTEM = "system", "System"


class Comment(TenantModel):
    """One entry of a ticket's thread: a public reply or an internal note."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author_type = models.CharField(max_length=10, choices=AuthorType.choices)
    author_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )
    author_customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )
    is_internal = models.BooleanField(default=False)
    via = models.CharField(max_length=12, choices=CommentVia.choices, default=CommentVia.WEB)
    # Sanitised HTML for display, and its plain-text form (search, notifications, mail).
    body_html = models.TextField(blank=True)
    body_text = models.TextField(blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(author_type=AuthorType.CUSTOMER, is_internal=True),
                name="comment_customer_never_internal",
            ),
        ]
        indexes = [
            # The ticket page reads a thread in order.
            models.Index(fields=["ticket", "created_at"], name="comment_ticket_created_idx"),
        ]

    def __str__(self) -> str:
        kind = "note" if self.is_internal else "reply"
        return f"{kind} on ticket {self.ticket_id}"


class ScheduledCommentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class ScheduledComment(TenantModel):
    """A reply written now and posted at ``send_at`` by the beat task."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="scheduled_comments")
    author = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="scheduled_comments"
    )
    is_internal = models.BooleanField(default=False)
    body_html = models.TextField(blank=True)
    body_text = models.TextField(blank=True)
    send_at = models.DateTimeField()
    status = models.CharField(
        max_length=10,
        choices=ScheduledCommentStatus.choices,
        default=ScheduledCommentStatus.PENDING,
    )
    comment = models.OneToOneField(
        Comment, null=True, blank=True, on_delete=models.SET_NULL, related_name="scheduled_from"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["send_at", "id"]
        indexes = [
            # The every-minute task claims due replies of every workspace, oldest first; the
            # partial index keeps the scan to the pending few.
            models.Index(
                fields=["send_at"],
                condition=Q(status="pending"),
                name="scheduled_pending_due_idx",
            ),
            models.Index(fields=["workspace", "status"], name="scheduled_ws_status_idx"),
        ]

    def __str__(self) -> str:
        return f"Reply to ticket {self.ticket_id} at {self.send_at:%Y-%m-%d %H:%M}"


def attachment_upload_to(instance: TicketAttachment, filename: str) -> str:
    # A random folder per file keeps the original name without collisions or guessable URLs.
    safe_name = PurePath(filename).name[-150:] or "attachment"
    now = timezone.now()
    return f"attachments/{instance.workspace_id}/{now:%Y/%m}/{uuid.uuid4().hex}/{safe_name}"


class TicketAttachment(TenantModel):
    """A stored file: uploaded ahead of a reply, or received with an email."""

    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    scheduled_comment = models.ForeignKey(
        ScheduledComment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attachments",
    )
    file = models.FileField(upload_to=attachment_upload_to, max_length=400)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    # For inline images: the Content-ID an email body refers to as "cid:...".
    content_id = models.CharField(max_length=255, blank=True)
    is_inline = models.BooleanField(default=False)
    uploaded_by = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(TenantModel.Meta):
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="attachment_ticket_idx"),
        ]

    def __str__(self) -> str:
        return self.filename


class CannedReply(TenantModel):
    title = models.CharField(max_length=200)
    # Text with placeholders such as {{customer.first_name}}, rendered without a template engine.
    body = models.TextField()
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="canned_replies"
    )
    # Null: shared with the whole workspace; else personal to this agent.
    owner = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="canned_replies"
    )
    usage_count = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["title", "id"]
        verbose_name_plural = "canned replies"

    def __str__(self) -> str:
        return self.title


class ActorType(models.TextChoices):
    AGENT = "agent", "Agent"
    CUSTOMER = "customer", "Customer"
    SYSTEM = "system", "System"
    AUTOMATION = "automation", "Automation"


class TicketEventKind(models.TextChoices):
    CREATED = "created", "Created"
    FIELD_CHANGED = "field_changed", "Field changed"
    TAGS_CHANGED = "tags_changed", "Tags changed"
    REPLIED = "replied", "Public reply"
    NOTE_ADDED = "note_added", "Internal note"
    CUSTOMER_REPLIED = "customer_replied", "Customer replied"
    REPLY_SCHEDULED = "reply_scheduled", "Reply scheduled"
    MERGED = "merged", "Merged into another ticket"
    MERGED_FROM = "merged_from", "Another ticket merged in"
    DELETED = "deleted", "Deleted"
    RESTORED = "restored", "Restored"
    AUTOMATION = "automation", "Automation fired"
    SLA_BREACHED = "sla_breached", "SLA breached"
    # Every change a macro made (fields, tags, its reply), as one entry (automation.services).
    MACRO_APPLIED = "macro_applied", "Macro applied"


class TicketEvent(TenantModel):
    """Field-level history: who changed what, from what, to what, when."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=TicketEventKind.choices)
    actor_type = models.CharField(max_length=12, choices=ActorType.choices)
    actor_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    field = models.CharField(max_length=40, blank=True)
    # JSON so ids, lists of tags and timestamps keep their type.
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["created_at", "id"]
        indexes = [
            # A ticket's history, in order.
            models.Index(fields=["ticket", "created_at"], name="ticket_event_ticket_idx"),
        ]

    def __str__(self) -> str:
        if self.field:
            return f"{self.field}: {self.old_value!r} -> {self.new_value!r}"
        return self.get_kind_display()

    def as_payload(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "field": self.field,
            "old": self.old_value,
            "new": self.new_value,
            "actor_type": self.actor_type,
            "actor_agent": self.actor_agent_id,
            "at": self.created_at.isoformat(),
        }


class SavedView(TenantModel):
    """A named ticket filter: personal to its owner, or shared with the workspace (null owner).

    ``filters`` holds the normalised output of the ticket list's filter serializer
    (``tickets.api.filters.TicketFilterQuery``), so a view and ``GET /v1/tickets`` accept
    exactly the same filters; ``assignee: "me"`` means whoever opens the view.
    """

    name = models.CharField(max_length=120)
    owner = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="saved_views"
    )
    filters = models.JSONField(default=dict, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "name", "id"]
        constraints = [
            # Names are unique among the shared views, and among each agent's own ones.
            models.UniqueConstraint(
                "workspace",
                Lower("name"),
                condition=Q(owner__isnull=True),
                name="saved_view_shared_name_unique",
            ),
            models.UniqueConstraint(
                "owner",
                Lower("name"),
                condition=Q(owner__isnull=False),
                name="saved_view_personal_name_unique",
            ),
        ]
        indexes = [
            # The views sidebar: the shared views and the caller's own, in position order.
            models.Index(fields=["workspace", "owner", "position"], name="saved_view_ws_owner_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.owner_id is None


class TicketCountDelta(TenantModel):
    """Signed changes to the number of live tickets per (status, assignee, team, mailbox).

    The inbox counts of a workspace are ``SUM(n)`` of its rows grouped by that key
    (``tickets.counts``), instead of a count over its tickets. Rows are appended by triggers
    on ``tickets_ticket`` (migration 0009): every path that changes a ticket — services,
    bulk ``.update()``, the admin, ``SET NULL`` cascades, raw SQL — keeps the counts right,
    and appending (never updating a shared row) means concurrent writers never wait on one
    another. A periodic job folds each key's rows into one (``compact_ticket_counts``).

    Live means not soft-deleted, whatever the status (merged tickets count as the closed
    tickets they are, as in ``selectors.ticket_list``).
    """

    # No foreign-key constraint and no cascade: the triggers append rows while a workspace's
    # tickets are being deleted with it, and a constraint would refuse those at commit.
    # Rows of a deleted workspace are removed by the compaction.
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    # Written by triggers, many per second: the timestamps of the base would only cost space.
    created_at = None
    updated_at = None
    status = models.CharField(max_length=10, choices=TicketStatus.choices)
    # Plain ids, not foreign keys: a key outlives the agent, team or mailbox it names only
    # until the SET NULL of their deletion moves its tickets (and so their count) to NULL.
    assignee_id = models.BigIntegerField(null=True, blank=True)
    team_id = models.BigIntegerField(null=True, blank=True)
    mailbox_id = models.BigIntegerField(null=True, blank=True)
    n = models.IntegerField()

    class Meta(TenantModel.Meta):
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.status} {self.assignee_id}/{self.team_id}/{self.mailbox_id}: {self.n:+d}"
