"""``/v1/mailboxes``: the workspace's mailboxes, their sync state, sync now, test.

Any member lists and reads mailboxes (agents see where mail comes from and whether it
flows); owners and admins add IMAP/SMTP mailboxes, change and delete any mailbox, ask for
a sync and test a connection. Passwords are write-only: answers say whether one is set
(``imap_password_set``), never what it is. Microsoft 365 mailboxes are added through the
OAuth flow (``integrations.microsoft``); they are listed here with ``provider:
"microsoft"`` and can change their defaults and state, or be deleted.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.fields import id_field
from enque.api.permissions import IsAdminRole
from integrations import services
from integrations.models import MailboxConnection, SyncStatus, TransportSecurity
from tickets.models import Category, TicketPriority
from workspaces.models import Team, Workspace
from workspaces.people_api.base import NO_CONTENT, PeopleViewSet
from workspaces.people_api.serializers import NamedRefOutput
from workspaces.selectors import reference_in_workspace

# --- Serializers -----------------------------------------------------------------------


class MailboxSyncOutput(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=SyncStatus.choices,
        source="sync_status",
        help_text="`reconnect`: the password or Microsoft grant stopped working; an admin "
        "must enter a new one (IMAP) or connect the mailbox again (Microsoft 365).",
    )
    last_synced_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(help_text="The last failure, empty after a success.")
    last_error_at = serializers.DateTimeField(allow_null=True)
    enabled = serializers.SerializerMethodField()
    interval_seconds = serializers.SerializerMethodField(
        help_text="This mailbox's own sync interval; null: the deployment's."
    )

    def _config(self, mailbox: MailboxConnection) -> Any:
        try:
            return mailbox.sync_config
        except MailboxConnection.sync_config.RelatedObjectDoesNotExist:
            return None

    def get_enabled(self, mailbox: MailboxConnection) -> bool:
        config = self._config(mailbox)
        return config is None or config.enabled

    def get_interval_seconds(self, mailbox: MailboxConnection) -> int | None:
        config = self._config(mailbox)
        return config.interval_seconds if config is not None else None


class MailboxOutput(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField(help_text="`imap` or `microsoft`.")
    email_address = serializers.EmailField()
    display_name = serializers.CharField()
    is_active = serializers.BooleanField()
    is_shared_mailbox = serializers.BooleanField(help_text="Microsoft 365 shared mailbox.")
    microsoft_integration_id = serializers.IntegerField(
        allow_null=True, help_text="Microsoft 365: the workspace's app; null: the default app."
    )
    imap_host = serializers.CharField()
    imap_port = serializers.IntegerField(allow_null=True)
    imap_security = serializers.CharField()
    imap_username = serializers.CharField()
    imap_password_set = serializers.SerializerMethodField()
    imap_folder = serializers.CharField()
    smtp_host = serializers.CharField()
    smtp_port = serializers.IntegerField(allow_null=True)
    smtp_security = serializers.CharField()
    smtp_username = serializers.CharField()
    smtp_password_set = serializers.SerializerMethodField()
    default_team = NamedRefOutput(allow_null=True)
    default_category = NamedRefOutput(allow_null=True)
    default_priority = serializers.CharField()
    sync = MailboxSyncOutput(source="*")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_imap_password_set(self, mailbox: MailboxConnection) -> bool:
        return bool(mailbox.imap_password)

    def get_smtp_password_set(self, mailbox: MailboxConnection) -> bool:
        return bool(mailbox.smtp_password)


def _security_field(**kwargs: Any) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=TransportSecurity.choices, **kwargs)


def _port_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=65535, **kwargs)


class _MailboxCommonInput(serializers.Serializer):
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)
    default_team_id = id_field(required=False, allow_null=True)
    default_category_id = id_field(required=False, allow_null=True)
    default_priority = serializers.ChoiceField(choices=TicketPriority.values, required=False)


class MailboxCreateInput(_MailboxCommonInput):
    email_address = serializers.EmailField(max_length=254)
    imap_host = serializers.CharField(max_length=253)
    imap_port = _port_field(required=False, help_text="Default: 993 with ssl, else 143.")
    imap_security = _security_field(required=False, default=TransportSecurity.SSL)
    imap_username = serializers.CharField(max_length=254)
    imap_password = serializers.CharField(
        max_length=1000, write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )
    imap_folder = serializers.CharField(max_length=200, required=False, default="INBOX")
    smtp_host = serializers.CharField(max_length=253, required=False, allow_blank=True)
    smtp_port = _port_field(required=False, allow_null=True)
    smtp_security = _security_field(required=False, default=TransportSecurity.STARTTLS)
    smtp_username = serializers.CharField(max_length=254, required=False, allow_blank=True)
    smtp_password = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
    )
    verify = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Sign in to the IMAP server first; if that fails, nothing is saved (400 "
        "`imap_connection_failed`).",
    )


class MailboxUpdateInput(_MailboxCommonInput):
    email_address = serializers.EmailField(max_length=254, required=False)
    imap_host = serializers.CharField(max_length=253, required=False)
    imap_port = _port_field(required=False)
    imap_security = _security_field(required=False)
    imap_username = serializers.CharField(max_length=254, required=False)
    imap_password = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        help_text="Empty or absent: keep the stored password.",
    )
    imap_folder = serializers.CharField(max_length=200, required=False)
    smtp_host = serializers.CharField(max_length=253, required=False, allow_blank=True)
    smtp_port = _port_field(required=False, allow_null=True)
    smtp_security = _security_field(required=False)
    smtp_username = serializers.CharField(max_length=254, required=False, allow_blank=True)
    smtp_password = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        help_text="Empty or absent: keep the stored password.",
    )
    verify = serializers.BooleanField(
        required=False,
        default=False,
        help_text="When IMAP settings change, sign in with them first (400 on failure).",
    )


class ConnectionCheckOutput(serializers.Serializer):
    ok = serializers.BooleanField(allow_null=True, help_text="null: not applicable.")
    message = serializers.CharField()


class MailboxTestOutput(serializers.Serializer):
    imap = ConnectionCheckOutput()
    smtp = ConnectionCheckOutput()


# --- Views -----------------------------------------------------------------------------


class MailboxViewSet(PeopleViewSet):
    model = MailboxConnection
    output_serializer_class = MailboxOutput
    input_serializers = {"create": MailboxCreateInput, "partial_update": MailboxUpdateInput}
    output_serializers = {"destroy": NO_CONTENT, "test": MailboxTestOutput}
    action_permission_classes = {
        "create": (IsAdminRole,),
        "partial_update": (IsAdminRole,),
        "destroy": (IsAdminRole,),
        "sync": (IsAdminRole,),
        "test": (IsAdminRole,),
    }
    cursor_ordering = ("email_address", "id")

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[MailboxConnection]:
        # One query: the mailboxes joined to their team, category and sync config.
        return services.mailbox_list(workspace=workspace)

    def _references(self, data: dict[str, Any]) -> dict[str, Any]:
        """``default_team_id`` / ``default_category_id`` as objects of this workspace."""
        refs: dict[str, Any] = {}
        for key, model, name in (
            ("default_team_id", Team, "default_team"),
            ("default_category_id", Category, "default_category"),
        ):
            if key in data:
                pk = data.pop(key)
                refs[name] = (
                    None
                    if pk is None
                    else reference_in_workspace(model, self.workspace, pk, field=key)
                )
        return refs

    def _fresh(self, mailbox: MailboxConnection) -> MailboxConnection:
        return services.mailbox_list(workspace=self.workspace).get(pk=mailbox.pk)

    @extend_schema(
        summary="List mailboxes",
        description="Every mailbox of the workspace (IMAP/SMTP and Microsoft 365) with its "
        "sync state, by address. Passwords are never returned.",
    )
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(
        summary="Add an IMAP/SMTP mailbox (admins)",
        description="The IMAP server is read for new mail every sync interval; SMTP (optional "
        "here) sends the replies. Passwords are stored encrypted and never returned. An "
        "address another mailbox of the workspace has is a 409 `duplicate`. Microsoft 365 "
        "mailboxes are connected through the OAuth flow instead.",
        examples=[
            OpenApiExample(
                "IMAP over SSL",
                value={
                    "email_address": "help@example.com",
                    "imap_host": "imap.example.com",
                    "imap_port": 993,
                    "imap_security": "ssl",
                    "imap_username": "help@example.com",
                    "imap_password": "app-password",
                    "smtp_host": "smtp.example.com",
                    "smtp_port": 587,
                    "smtp_security": "starttls",
                    "smtp_username": "help@example.com",
                    "smtp_password": "app-password",
                },
                request_only=True,
            )
        ],
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        refs = self._references(data)
        if data.get("imap_port") is None:
            data["imap_port"] = 993 if data["imap_security"] == TransportSecurity.SSL else 143
        if data.get("smtp_port") is None:
            data.pop("smtp_port", None)
        mailbox = services.mailbox_create_imap(
            workspace=self.workspace, actor=self.agent, **refs, **data
        )
        return self.output(self._fresh(mailbox), status=status.HTTP_201_CREATED)

    @extend_schema(summary="A mailbox")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(
        summary="Change a mailbox (admins)",
        description="Any mailbox: `display_name`, `is_active` and the defaults for new "
        "tickets. IMAP mailboxes also their address and IMAP/SMTP settings; an empty or "
        "absent password keeps the stored one. New IMAP settings clear a `reconnect` or "
        "`error` state; a new host, user name or folder restarts the sync from the folder's "
        "start (messages already imported are not imported twice).",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        mailbox = self.get_object()
        data = self.validated_input(partial=True)
        verify = data.pop("verify", False)
        refs = self._references(data)
        services.mailbox_update(
            workspace=self.workspace,
            actor=self.agent,
            mailbox=mailbox,
            verify=verify,
            **refs,
            **data,
        )
        return self.output(self._fresh(mailbox))

    @extend_schema(
        summary="Delete a mailbox (admins)",
        description="Its tickets and received mail stay.",
        responses={204: None},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.mailbox_delete(
            workspace=self.workspace, actor=self.agent, mailbox=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Sync a mailbox now (admins)",
        description="Queues a sync (202); the mailbox's `sync.status` shows its progress and "
        "outcome. A mailbox that needs reconnecting (409 `mailbox_reconnect_needed`), is "
        "inactive (409 `mailbox_inactive`) or has sync turned off (409 "
        "`mailbox_sync_disabled`) is not synced.",
        request=None,
        responses={202: MailboxOutput},
    )
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk: str) -> Response:
        mailbox = self.get_object()
        services.mailbox_request_sync(workspace=self.workspace, actor=self.agent, mailbox=mailbox)
        return self.output(mailbox, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Test a mailbox's connection (admins)",
        description="Signs in to the IMAP server and connects (and signs in) to the SMTP "
        "server with the stored settings; saves nothing. `ok: null` means not applicable "
        "(no SMTP server set; Microsoft 365 mailboxes).",
        request=None,
        responses={200: MailboxTestOutput},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str) -> Response:
        checks = services.mailbox_test_connection(
            workspace=self.workspace, actor=self.agent, mailbox=self.get_object()
        )
        return self.output({name: {"ok": c.ok, "message": c.message} for name, c in checks.items()})
