"""Mailboxes and mail: connections, Microsoft credentials, sync state, raw inbound mail."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from enque.encryption import EncryptedTextField
from tickets.models import Category, Comment, Ticket, TicketPriority
from workspaces.models import Team, TenantModel


class MicrosoftIntegration(TenantModel):
    """A workspace's own Azure AD app registration (else the deployment's default app)."""

    name = models.CharField(max_length=120, default="Microsoft 365")
    # Directory (tenant) id, or "common" / "organizations" for multi-tenant apps.
    tenant_id = models.CharField(max_length=64, default="organizations")
    client_id = models.CharField(max_length=64)
    client_secret = EncryptedTextField(blank=True)
    is_active = models.BooleanField(default=True)

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "client_id"], name="ms_integration_client_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"


class MailboxProvider(models.TextChoices):
    MICROSOFT = "microsoft", "Microsoft 365"
    IMAP = "imap", "IMAP / SMTP"


class TransportSecurity(models.TextChoices):
    SSL = "ssl", "SSL/TLS"
    STARTTLS = "starttls", "STARTTLS"
    NONE = "none", "None (local testing only)"


class SyncStatus(models.TextChoices):
    IDLE = "idle", "Idle"
    SYNCING = "syncing", "Syncing"
    OK = "ok", "OK"
    ERROR = "error", "Error"
    # The grant was revoked or expired: an admin must connect the mailbox again.
    RECONNECT_NEEDED = "reconnect", "Reconnect needed"


class MailboxConnection(TenantModel):
    provider = models.CharField(max_length=10, choices=MailboxProvider.choices)
    email_address = models.EmailField(max_length=254)
    display_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)

    # Microsoft 365: which app registration; null means the deployment's default app.
    microsoft_integration = models.ForeignKey(
        MicrosoftIntegration,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mailboxes",
    )
    # Shared mailboxes are reached through /users/{address} instead of /me.
    is_shared_mailbox = models.BooleanField(default=False)

    # IMAP in, SMTP out.
    imap_host = models.CharField(max_length=253, blank=True)
    imap_port = models.PositiveIntegerField(null=True, blank=True)
    imap_security = models.CharField(
        max_length=10, choices=TransportSecurity.choices, default=TransportSecurity.SSL
    )
    imap_username = models.CharField(max_length=254, blank=True)
    imap_password = EncryptedTextField(blank=True)
    imap_folder = models.CharField(max_length=200, default="INBOX")
    smtp_host = models.CharField(max_length=253, blank=True)
    smtp_port = models.PositiveIntegerField(null=True, blank=True)
    smtp_security = models.CharField(
        max_length=10, choices=TransportSecurity.choices, default=TransportSecurity.STARTTLS
    )
    smtp_username = models.CharField(max_length=254, blank=True)
    smtp_password = EncryptedTextField(blank=True)

    # Applied to tickets this mailbox creates.
    default_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_priority = models.CharField(
        max_length=10, choices=TicketPriority.choices, default=TicketPriority.NORMAL
    )

    sync_status = models.CharField(
        max_length=10, choices=SyncStatus.choices, default=SyncStatus.IDLE
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["email_address", "id"]
        constraints = [
            models.UniqueConstraint(
                "workspace", Lower("email_address"), name="mailbox_address_ci_unique"
            ),
        ]
        indexes = [
            # The sync beat walks active mailboxes of every workspace.
            models.Index(fields=["is_active", "provider"], name="mailbox_active_idx"),
        ]

    def __str__(self) -> str:
        return self.email_address


class MicrosoftToken(TenantModel):
    """MSAL's serialized token cache for one mailbox, encrypted at rest.

    Saved again whenever MSAL rotates the refresh token, so a restart never loses a grant.
    """

    mailbox = models.OneToOneField(
        MailboxConnection, on_delete=models.CASCADE, related_name="microsoft_token"
    )
    token_cache = EncryptedTextField(blank=True)
    # MSAL's account identifier ("<oid>.<tid>") to pick the account out of the cache.
    home_account_id = models.CharField(max_length=200, blank=True)
    scopes = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Token for {self.mailbox}"


class MailDirection(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class EmailTicketMapping(TenantModel):
    """Which email message belongs to which ticket (and comment): the threading index."""

    mailbox = models.ForeignKey(
        MailboxConnection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="email_mappings")
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.SET_NULL, related_name="email_mappings"
    )
    direction = models.CharField(max_length=10, choices=MailDirection.choices)
    # The provider's id (Graph immutable id, IMAP "<uidvalidity>:<uid>"), blank when none.
    provider_message_id = models.CharField(max_length=400, blank=True)
    # RFC 5322 Message-ID without angle brackets; In-Reply-To/References are matched on it.
    message_id = models.CharField(max_length=998)
    conversation_id = models.CharField(max_length=400, blank=True)

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="mapping_provider_id_unique",
            ),
        ]
        indexes = [
            # Threading looks up In-Reply-To/References within the workspace.
            models.Index(fields=["workspace", "message_id"], name="mapping_ws_message_id_idx"),
        ]

    def __str__(self) -> str:
        return f"<{self.message_id}> → ticket {self.ticket_id}"


class EmailSyncConfig(TenantModel):
    """Incremental sync state per mailbox (Graph delta link, IMAP UID watermark)."""

    mailbox = models.OneToOneField(
        MailboxConnection, on_delete=models.CASCADE, related_name="sync_config"
    )
    folder = models.CharField(max_length=200, default="inbox")
    delta_link = models.TextField(blank=True)
    imap_uidvalidity = models.BigIntegerField(null=True, blank=True)
    imap_last_uid = models.BigIntegerField(default=0)
    # Overrides EMAIL_SYNC_INTERVAL for this mailbox when set.
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    last_full_sync_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"Sync of {self.mailbox}"


class InboundEmailStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored (automatic or looped mail)"
    FAILED = "failed", "Failed"


def inbound_email_upload_to(instance: InboundEmail, filename: str) -> str:
    now = timezone.now()
    return f"inbound/{instance.workspace_id}/{now:%Y/%m/%d}/{uuid.uuid4().hex}.eml"


class InboundEmail(TenantModel):
    """A received message, stored raw before any processing so nothing is ever lost."""

    mailbox = models.ForeignKey(
        MailboxConnection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Uploaded or imported with no mailbox (as opposed to a mailbox deleted since).
    received_without_mailbox = models.BooleanField(default=False)
    raw = models.FileField(upload_to=inbound_email_upload_to, max_length=300)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    provider_message_id = models.CharField(max_length=400, blank=True)
    # Message-ID header (synthesised from a hash of the message when missing).
    message_id = models.CharField(max_length=998)
    from_address = models.CharField(max_length=254, blank=True)
    # Where the sender asked replies to go; identity is always From, this is kept for replies.
    reply_to = models.CharField(max_length=998, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    status = models.CharField(
        max_length=12, choices=InboundEmailStatus.choices, default=InboundEmailStatus.RECEIVED
    )
    # An out-of-office or other auto-reply threaded onto its ticket: its comment neither
    # reopened the ticket nor may trigger an auto-response.
    is_auto_reply = models.BooleanField(default=False)
    # Why the message was ignored or how it failed, for the admin and for replay.
    reason = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        constraints = [
            # Dedupe: the same message fetched twice, or by two racing workers, is stored once.
            models.UniqueConstraint(
                fields=["mailbox", "message_id"], name="inbound_mailbox_message_id_unique"
            ),
            models.UniqueConstraint(
                fields=["mailbox", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="inbound_mailbox_provider_id_unique",
            ),
            # NULLs are distinct in a unique index, so mail received through no mailbox (an
            # admin upload, `ingest_email` without --mailbox) dedupes per workspace instead.
            # Keyed on how it was received, not on mailbox IS NULL: deleting two mailboxes
            # that both received one message sets both rows' mailbox to NULL, legitimately.
            models.UniqueConstraint(
                fields=["workspace", "message_id"],
                condition=Q(received_without_mailbox=True),
                name="inbound_no_mailbox_message_id_unique",
            ),
        ]
        indexes = [
            # The admin's "failed mail" view and `reprocess_email`.
            models.Index(fields=["workspace", "status"], name="inbound_ws_status_idx"),
            # `reprocess_email --failed` across workspaces: the few failed or stalled rows.
            models.Index(
                fields=["updated_at"],
                condition=Q(status__in=["failed", "processing"]),
                name="inbound_retry_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_address}: {self.subject}"[:120]


class OutboundEmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    # Gave up after the last retry, or the message can never go (no mailbox, no recipient).
    FAILED = "failed", "Failed"


class OutboundEmail(TenantModel):
    """One email we send: a public reply (or an automatic message) on its way to a customer.

    A row is written in the transaction that creates the reply, and the send task runs on
    commit; the row's status makes the send idempotent and retryable with backoff.
    """

    mailbox = models.ForeignKey(
        MailboxConnection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="outbound_emails")
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbound_emails"
    )
    # Our Message-ID (integrations.mime.make_message_id()), without angle brackets.
    message_id = models.CharField(max_length=998)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    to_addresses = models.JSONField(default=list, blank=True)
    cc_addresses = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    # Auto-responses and notifications: capped per recipient per hour against loops.
    is_automatic = models.BooleanField(default=False)
    status = models.CharField(
        max_length=10, choices=OutboundEmailStatus.choices, default=OutboundEmailStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=400, blank=True)

    class Meta(TenantModel.Meta):
        constraints = [
            # One email per reply, however often the send is enqueued.
            models.UniqueConstraint(
                fields=["comment"],
                condition=Q(comment__isnull=False),
                name="outbound_comment_unique",
            ),
            models.UniqueConstraint(
                fields=["workspace", "message_id"], name="outbound_ws_message_id_unique"
            ),
        ]
        indexes = [
            # The retry sweep claims due pending rows of every workspace.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="outbound_pending_due_idx",
            ),
            models.Index(fields=["workspace", "status"], name="outbound_ws_status_idx"),
            # The automatic-mail cap counts recent automatic messages to one address.
            models.Index(
                fields=["workspace", "is_automatic", "created_at"], name="outbound_auto_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"<{self.message_id}> to {', '.join(self.to_addresses)}"[:120]
