"""Admin for mailboxes, Microsoft credentials, sync state and raw inbound mail.

Secrets (client secret, IMAP/SMTP passwords) are write-only inputs; the MSAL token cache is
never shown nor editable (``enque.admin_base`` keeps encrypted columns out of every query).
Inbound mail, threading rows and tokens are machine state: read-only here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html

from enque.admin_base import (
    ReadOnlyMixin,
    TenantAdmin,
    related_filter,
    secret_form,
    secret_status,
    workspace_filter,
)
from integrations.models import (
    EmailSyncConfig,
    EmailTicketMapping,
    InboundEmail,
    MailboxConnection,
    MicrosoftIntegration,
    MicrosoftToken,
    OutboundEmail,
    OutboundEmailStatus,
    SyncStatus,
)


@admin.register(MicrosoftIntegration)
class MicrosoftIntegrationAdmin(TenantAdmin):
    form = secret_form(MicrosoftIntegration, {"client_secret": "client secret"})
    list_display = (
        "name",
        "client_id",
        "tenant_id",
        "client_secret_status",
        "is_active",
        "workspace",
    )
    list_filter = (workspace_filter(), "is_active")
    list_select_related = ("workspace",)
    search_fields = ("name", "client_id")
    readonly_fields = ("client_secret_status",)
    fieldsets = (
        (None, {"fields": ("workspace", "name", "tenant_id", "client_id", "is_active")}),
        (
            "Client secret",
            {"fields": ("client_secret_status", "client_secret", "client_secret_clear")},
        ),
    )

    client_secret_status = secret_status("client_secret", "client secret")


@admin.register(MailboxConnection)
class MailboxConnectionAdmin(TenantAdmin):
    form = secret_form(
        MailboxConnection, {"imap_password": "IMAP password", "smtp_password": "SMTP password"}
    )
    list_display = (
        "email_address",
        "provider",
        "is_active",
        "sync_status",
        "last_synced_at",
        "last_error_at",
        "imap_password_status",
        "smtp_password_status",
        "workspace",
    )
    list_filter = (workspace_filter(), "provider", "is_active", "sync_status")
    list_select_related = ("workspace",)
    search_fields = ("email_address", "display_name")
    readonly_fields = (
        "imap_password_status",
        "smtp_password_status",
        "sync_status",
        "last_synced_at",
        "last_error",
        "last_error_at",
    )
    fieldsets = (
        (None, {"fields": ("workspace", "provider", "email_address", "display_name", "is_active")}),
        ("Microsoft 365", {"fields": ("microsoft_integration", "is_shared_mailbox")}),
        (
            "IMAP (incoming)",
            {
                "fields": (
                    "imap_host",
                    "imap_port",
                    "imap_security",
                    "imap_username",
                    "imap_password_status",
                    "imap_password",
                    "imap_password_clear",
                    "imap_folder",
                )
            },
        ),
        (
            "SMTP (outgoing)",
            {
                "fields": (
                    "smtp_host",
                    "smtp_port",
                    "smtp_security",
                    "smtp_username",
                    "smtp_password_status",
                    "smtp_password",
                    "smtp_password_clear",
                )
            },
        ),
        ("New tickets", {"fields": ("default_team", "default_category", "default_priority")}),
        ("Sync", {"fields": ("sync_status", "last_synced_at", "last_error", "last_error_at")}),
    )

    imap_password_status = secret_status("imap_password", "IMAP password")
    smtp_password_status = secret_status("smtp_password", "SMTP password")
    actions = ("sync_now",)

    @admin.action(description="Sync now")
    def sync_now(self, request: HttpRequest, queryset: Any) -> None:
        # Active mailboxes that do not wait for a reconnect; each queued once, on commit.
        from integrations.tasks import enqueue_sync

        ready = queryset.filter(is_active=True).exclude(sync_status=SyncStatus.RECONNECT_NEEDED)
        ids = list(ready.values_list("pk", flat=True))
        for mailbox_id in ids:
            transaction.on_commit(lambda mailbox_id=mailbox_id: enqueue_sync(mailbox_id))
        skipped = queryset.count() - len(ids)
        message = f"Queued a sync of {len(ids)} mailbox(es)."
        if skipped:
            message += f" Skipped {skipped} inactive or waiting for a reconnect."
        self.message_user(request, message, messages.SUCCESS if ids else messages.WARNING)


@admin.register(MicrosoftToken)
class MicrosoftTokenAdmin(TenantAdmin):
    """The MSAL cache is never shown. Deleting a token disconnects the mailbox: an admin
    must connect it again."""

    fields = readonly_fields = (
        "workspace",
        "mailbox",
        "home_account_id",
        "scopes",
        "expires_at",
        "token_cache_status",
        "created_at",
        "updated_at",
    )
    list_display = ("mailbox", "home_account_id", "expires_at", "token_cache_status", "workspace")
    list_filter = (workspace_filter(),)
    list_select_related = ("mailbox", "workspace")
    search_fields = ("mailbox__email_address", "home_account_id")

    token_cache_status = secret_status("token_cache", "token cache")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EmailTicketMapping)
class EmailTicketMappingAdmin(TenantAdmin):
    """The threading index, written by the mail pipeline. A wrong row can be deleted."""

    list_display = ("message_id", "direction", "ticket", "mailbox", "created_at", "workspace")
    list_filter = (workspace_filter(), "direction", related_filter("mailbox"))
    list_select_related = ("ticket", "mailbox", "workspace")
    search_fields = ("=message_id", "=provider_message_id", "=conversation_id")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EmailSyncConfig)
class EmailSyncConfigAdmin(TenantAdmin):
    list_display = (
        "mailbox",
        "folder",
        "enabled",
        "interval_seconds",
        "imap_last_uid",
        "last_full_sync_at",
        "workspace",
    )
    list_filter = (workspace_filter(), "enabled")
    list_select_related = ("mailbox", "workspace")
    search_fields = ("mailbox__email_address",)
    fields = (
        "workspace",
        "mailbox",
        "folder",
        "enabled",
        "interval_seconds",
        "delta_link",
        "imap_uidvalidity",
        "imap_last_uid",
        "last_full_sync_at",
    )
    # The watermarks belong to the sync task; an admin changes what and how often.
    readonly_fields = ("delta_link", "imap_uidvalidity", "imap_last_uid", "last_full_sync_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = super().get_readonly_fields(request, obj)
        return readonly if obj is None else [*readonly, "mailbox"]


@admin.register(InboundEmail)
class InboundEmailAdmin(ReadOnlyMixin, TenantAdmin):
    """Every received message, stored before processing; read-only (replay is a command)."""

    list_display = (
        "created_at",
        "from_address",
        "subject",
        "mailbox",
        "status",
        "reason",
        "ticket",
        "attempts",
        "workspace",
    )
    list_filter = (workspace_filter(), "status", related_filter("mailbox"))
    list_select_related = ("mailbox", "ticket", "workspace")
    search_fields = ("from_address", "subject", "=message_id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = readonly_fields = (
        "workspace",
        "mailbox",
        "status",
        "reason",
        "error",
        "attempts",
        "from_address",
        "subject",
        "message_id",
        "provider_message_id",
        "size_display",
        "sha256",
        "raw_message",
        "ticket",
        "comment",
        "created_at",
        "processed_at",
    )

    @admin.display(description="size", ordering="size")
    def size_display(self, obj: InboundEmail) -> str:
        return filesizeformat(obj.size)

    @admin.display(description="raw message")
    def raw_message(self, obj: InboundEmail) -> str:
        url = reverse("admin:integrations_inboundemail_raw", args=[obj.pk])
        return format_html('<a href="{}">Download .eml</a>', url)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/raw/",
                self.admin_site.admin_view(self.raw_view),
                name="integrations_inboundemail_raw",
            ),
            *super().get_urls(),
        ]

    def raw_view(self, request: HttpRequest, object_id: str) -> FileResponse:
        email = self.get_object(request, unquote(object_id))
        if email is None or not self.has_view_permission(request, email):
            raise Http404("No such message.")
        try:
            handle = email.raw.open("rb")
        except (FileNotFoundError, ValueError):
            raise Http404("The message is missing from storage.") from None
        return FileResponse(
            handle, as_attachment=True, filename=f"{email.pk}.eml", content_type="message/rfc822"
        )


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ReadOnlyMixin, TenantAdmin):
    """Every email we send, with its delivery state; failed ones can be sent again."""

    list_display = (
        "created_at",
        "ticket",
        "recipients",
        "mailbox",
        "status",
        "attempts",
        "next_attempt_at",
        "short_error",
        "workspace",
    )
    list_filter = (workspace_filter(), "status", "is_automatic", related_filter("mailbox"))
    list_select_related = ("mailbox", "ticket", "workspace")
    search_fields = ("=message_id", "subject")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ("retry_now",)
    fields = readonly_fields = (
        "workspace",
        "mailbox",
        "ticket",
        "comment",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sent_at",
        "to_addresses",
        "cc_addresses",
        "subject",
        "message_id",
        "in_reply_to",
        "references",
        "is_automatic",
        "provider_message_id",
    )

    @admin.display(description="To")
    def recipients(self, obj: OutboundEmail) -> str:
        return ", ".join(obj.to_addresses)

    @admin.display(description="Error")
    def short_error(self, obj: OutboundEmail) -> str:
        return obj.last_error[:80]

    @admin.action(description="Send the selected failed emails again now")
    def retry_now(self, request: HttpRequest, queryset: Any) -> None:
        from integrations.outbound import retry_failed

        count = retry_failed(queryset)
        skipped = queryset.exclude(status=OutboundEmailStatus.FAILED).count()
        self.message_user(request, f"{count} email(s) queued to be sent again.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} selected email(s) were not failed and were left alone.",
                messages.WARNING,
            )
