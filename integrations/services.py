"""Writes to mailboxes: add an IMAP/SMTP mailbox, change or delete any mailbox, test its
connection, ask for a sync now. The API, the settings UI and the admin all call these.

Only a workspace's owners and admins manage its mailboxes. Passwords are write-only: an
empty password in an update keeps the stored one; they are stored encrypted
(``EncryptedTextField``) and never returned. Microsoft 365 mailboxes are created by the
OAuth callback (``integrations.microsoft``); here they can change their defaults and
state, and be deleted.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from enque.errors import Conflict, Forbidden, InvalidInput, NotFound
from integrations.errors import MailError, ReconnectNeeded
from integrations.imap import (
    TIMEOUT,
    ImapSettings,
    check_imap_login,
    resolve_mail_host,
    tls_context,
)
from integrations.models import (
    EmailSyncConfig,
    MailboxConnection,
    MailboxProvider,
    SyncStatus,
    TransportSecurity,
)
from tickets.models import Category, TicketPriority
from workspaces.models import Agent, Team, Workspace

logger = logging.getLogger(__name__)

_UNCHANGED: Any = object()
# RFC 1123 host names (and IPv4 literals); IPv6 literals in brackets are not taken.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Labels separated by single dots (no nested repetition without a separator: no ReDoS).
_HOST_RE = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")
MAX_FOLDER_LENGTH = 200

# Fields of an IMAP mailbox's connection: changing any makes the sync start afresh.
IMAP_CONNECTION_FIELDS = (
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_username",
    "imap_password",
    "imap_folder",
)
SMTP_FIELDS = ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_password")
# What any mailbox (Microsoft 365 too) may change.
COMMON_FIELDS = (
    "display_name",
    "is_active",
    "default_team",
    "default_category",
    "default_priority",
)


# --- Reads -------------------------------------------------------------------------------


def mailbox_list(*, workspace: Workspace) -> QuerySet[MailboxConnection]:
    """The workspace's mailboxes with what a list shows: one query, joins only."""
    return (
        MailboxConnection.objects.for_workspace(workspace)
        .select_related("default_team", "default_category", "sync_config")
        .order_by("email_address", "id")
    )


# --- Checks ------------------------------------------------------------------------------


def _require_admin(actor: Agent, workspace: Workspace) -> None:
    if actor.workspace_id != workspace.pk or not actor.is_active:
        raise NotFound("Workspace not found.")
    if not actor.is_admin:
        raise Forbidden(
            "Only an owner or admin of the workspace may manage mailboxes.",
            code="admin_required",
        )


def _in_workspace(workspace: Workspace, mailbox: MailboxConnection) -> None:
    if mailbox.workspace_id != workspace.pk:
        raise NotFound("Mailbox not found.")


def _reference(workspace: Workspace, obj: Any, *, field: str) -> None:
    if obj is not None and getattr(obj, "workspace_id", None) != workspace.pk:
        raise InvalidInput(
            f"Unknown {field} in this workspace.", code="invalid_reference", field=field
        )


def _email(value: str) -> str:
    value = (value or "").strip()
    try:
        validate_email(value)
    except DjangoValidationError:
        raise InvalidInput(
            "Enter a valid email address.", code="invalid", field="email_address"
        ) from None
    return value.lower()


def _host(value: str, *, field: str, required: bool) -> str:
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidInput("A server host is required.", code="required", field=field)
        return ""
    if not _HOST_RE.fullmatch(value):
        raise InvalidInput(
            "Enter a host name such as imap.example.com.", code="invalid", field=field
        )
    return value.lower().rstrip(".")


def _port(value: Any, *, field: str, required: bool) -> int | None:
    if value in (None, ""):
        if required:
            raise InvalidInput("A port is required.", code="required", field=field)
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise InvalidInput("A port is a number from 1 to 65535.", code="invalid", field=field)
    return port


def _security(value: str, *, field: str) -> str:
    if value not in TransportSecurity.values:
        raise InvalidInput(
            f"Security is one of: {', '.join(TransportSecurity.values)}.",
            code="invalid_choice",
            field=field,
        )
    return value


def _text(value: str, *, field: str, max_length: int, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput("This field is required.", code="required", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"At most {max_length} characters.", code="max_length", field=field)
    return value


def _secret(value: str, *, field: str, required: bool) -> str:
    # Passwords are kept as typed: leading or trailing spaces can be part of one.
    value = value or ""
    if required and not value:
        raise InvalidInput("A password is required.", code="required", field=field)
    if len(value) > 1000:
        raise InvalidInput("At most 1000 characters.", code="max_length", field=field)
    return value


def _priority(value: str) -> str:
    if value not in TicketPriority.values:
        raise InvalidInput(
            f"Priority is one of: {', '.join(TicketPriority.values)}.",
            code="invalid_choice",
            field="default_priority",
        )
    return value


def _clean(name: str, value: Any, workspace: Workspace) -> Any:
    """One field's value, validated; raises ``InvalidInput`` naming the field."""
    if name == "imap_host":
        return _host(value, field=name, required=True)
    if name == "smtp_host":
        return _host(value, field=name, required=False)
    if name == "imap_port":
        return _port(value, field=name, required=True)
    if name == "smtp_port":
        return _port(value, field=name, required=False)
    if name in ("imap_security", "smtp_security"):
        return _security(value, field=name)
    if name == "imap_username":
        return _text(value, field=name, max_length=254, required=True)
    if name == "smtp_username":
        return _text(value, field=name, max_length=254)
    if name == "imap_password":
        return _secret(value, field=name, required=True)
    if name == "smtp_password":
        return _secret(value, field=name, required=False)
    if name == "imap_folder":
        return _text(value, field=name, max_length=MAX_FOLDER_LENGTH) or "INBOX"
    if name == "display_name":
        return _text(value, field=name, max_length=200)
    if name == "is_active":
        return bool(value)
    if name == "default_team":
        _reference(workspace, value, field="default_team_id")
        return value
    if name == "default_category":
        _reference(workspace, value, field="default_category_id")
        return value
    if name == "default_priority":
        return _priority(value)
    raise InvalidInput(f"Unknown field {name}.", code="invalid", field=name)


def _check_smtp_complete(values: dict[str, Any]) -> None:
    if values.get("smtp_host") and not values.get("smtp_port"):
        raise InvalidInput(
            "A port is required with an SMTP host.", code="required", field="smtp_port"
        )
    if values.get("smtp_username") and not values.get("smtp_password"):
        raise InvalidInput(
            "A password is required with an SMTP user name.",
            code="required",
            field="smtp_password",
        )


def _verify_imap(values: dict[str, Any]) -> None:
    """Log in to the IMAP server with these settings; a failure is a 400 on the form."""
    try:
        check_imap_login(
            ImapSettings(
                host=values["imap_host"],
                port=values["imap_port"],
                security=values["imap_security"],
                username=values["imap_username"],
                password=values["imap_password"],
                folder=values.get("imap_folder") or "INBOX",
            )
        )
    except MailError as exc:
        # A refused login is about the credentials; anything else about the server.
        field = "imap_password" if isinstance(exc, ReconnectNeeded) else "imap_host"
        raise InvalidInput(
            f"Could not sign in to the IMAP server: {exc}",
            code="imap_connection_failed",
            field=field,
        ) from None


def _duplicate() -> Conflict:
    return Conflict(
        "This workspace has a mailbox with this address.", code="duplicate", field="email_address"
    )


# --- Writes ------------------------------------------------------------------------------


def mailbox_create_imap(
    *,
    workspace: Workspace,
    actor: Agent,
    email_address: str,
    imap_host: str,
    imap_port: int,
    imap_username: str,
    imap_password: str,
    imap_security: str = TransportSecurity.SSL,
    imap_folder: str = "INBOX",
    smtp_host: str = "",
    smtp_port: int | None = None,
    smtp_security: str = TransportSecurity.STARTTLS,
    smtp_username: str = "",
    smtp_password: str = "",
    display_name: str = "",
    is_active: bool = True,
    default_team: Team | None = None,
    default_category: Category | None = None,
    default_priority: str = TicketPriority.NORMAL,
    verify: bool = False,
) -> MailboxConnection:
    """Add an IMAP/SMTP mailbox (admins). ``verify``: log in to IMAP first, and refuse
    the mailbox (400 ``imap_connection_failed``) if that fails."""
    _require_admin(actor, workspace)
    raw = {
        "imap_host": imap_host,
        "imap_port": imap_port,
        "imap_security": imap_security,
        "imap_username": imap_username,
        "imap_password": imap_password,
        "imap_folder": imap_folder,
        "smtp_host": smtp_host,
        "smtp_port": smtp_port,
        "smtp_security": smtp_security,
        "smtp_username": smtp_username,
        "smtp_password": smtp_password,
        "display_name": display_name,
        "is_active": is_active,
        "default_team": default_team,
        "default_category": default_category,
        "default_priority": default_priority,
    }
    address = _email(email_address)
    values = {name: _clean(name, value, workspace) for name, value in raw.items()}
    _check_smtp_complete(values)
    if (
        MailboxConnection.objects.for_workspace(workspace)
        .filter(email_address__iexact=address)
        .exists()
    ):
        raise _duplicate()
    if verify:
        _verify_imap(values)
    try:
        with transaction.atomic():
            mailbox = MailboxConnection.objects.create(
                workspace=workspace, provider=MailboxProvider.IMAP, email_address=address, **values
            )
            EmailSyncConfig.objects.create(
                workspace=workspace, mailbox=mailbox, folder=values["imap_folder"]
            )
    except IntegrityError:
        raise _duplicate() from None
    logger.info("mailbox %s added by agent %s", mailbox.pk, actor.pk)
    return mailbox


def mailbox_update(
    *,
    workspace: Workspace,
    actor: Agent,
    mailbox: MailboxConnection,
    verify: bool = False,
    **changes: Any,
) -> MailboxConnection:
    """Change a mailbox (admins). Any of ``COMMON_FIELDS``; for IMAP mailboxes also the
    IMAP/SMTP settings and ``email_address``. An empty password keeps the stored one.

    New IMAP connection settings clear a "reconnect needed" or error state (the next sync
    tries them); a new host, user or folder also restarts the UID watermark.
    """
    _require_admin(actor, workspace)
    _in_workspace(workspace, mailbox)
    is_imap = mailbox.provider == MailboxProvider.IMAP
    allowed = set(COMMON_FIELDS)
    if is_imap:
        allowed |= {*IMAP_CONNECTION_FIELDS, *SMTP_FIELDS, "email_address"}
    for name in changes:
        if name not in allowed:
            raise InvalidInput(
                "IMAP and SMTP settings apply to IMAP mailboxes only."
                if name in (*IMAP_CONNECTION_FIELDS, *SMTP_FIELDS, "email_address")
                else f"Unknown field {name}.",
                code="invalid",
                field=name,
            )
    # Write-only secrets: empty means "keep".
    for secret in ("imap_password", "smtp_password"):
        if secret in changes and not changes[secret]:
            del changes[secret]
    values: dict[str, Any] = {}
    if "email_address" in changes:
        address = _email(changes.pop("email_address"))
        taken = (
            MailboxConnection.objects.for_workspace(workspace)
            .filter(email_address__iexact=address)
            .exclude(pk=mailbox.pk)
        )
        if taken.exists():
            raise _duplicate()
        values["email_address"] = address
    for name, value in changes.items():
        values[name] = _clean(name, value, workspace)
    merged = {name: getattr(mailbox, name) for name in (*IMAP_CONNECTION_FIELDS, *SMTP_FIELDS)}
    merged.update(values)
    if is_imap:
        _check_smtp_complete(merged)
    changed = {n: v for n, v in values.items() if getattr(mailbox, n) != v}
    if not changed:
        return mailbox
    connection_changed = [n for n in changed if n in IMAP_CONNECTION_FIELDS]
    if verify and connection_changed:
        _verify_imap(merged)
    for name, value in changed.items():
        setattr(mailbox, name, value)
    update_fields = [*changed]
    if connection_changed and mailbox.sync_status in (
        SyncStatus.RECONNECT_NEEDED,
        SyncStatus.ERROR,
    ):
        mailbox.sync_status, mailbox.last_error, mailbox.last_error_at = SyncStatus.IDLE, "", None
        update_fields += ["sync_status", "last_error", "last_error_at"]
    try:
        with transaction.atomic():
            mailbox.save(update_fields=[*update_fields, "updated_at"])
            if {"imap_host", "imap_username", "imap_folder"} & set(connection_changed):
                # Another server, account or folder: its UIDs are not the old ones.
                EmailSyncConfig.objects.update_or_create(
                    mailbox=mailbox,
                    defaults={
                        "workspace": workspace,
                        "folder": mailbox.imap_folder,
                        "imap_uidvalidity": None,
                        "imap_last_uid": 0,
                    },
                )
    except IntegrityError:
        raise _duplicate() from None
    logger.info("mailbox %s changed by agent %s: %s", mailbox.pk, actor.pk, sorted(changed))
    return mailbox


def mailbox_delete(*, workspace: Workspace, actor: Agent, mailbox: MailboxConnection) -> None:
    """Delete a mailbox (admins). Its tickets and received mail stay (they lose the link)."""
    _require_admin(actor, workspace)
    _in_workspace(workspace, mailbox)
    with transaction.atomic():
        mailbox.delete()
    logger.info("mailbox %s deleted by agent %s", mailbox.pk, actor.pk)


def mailbox_request_sync(*, workspace: Workspace, actor: Agent, mailbox: MailboxConnection) -> None:
    """Sync the mailbox now (admins): enqueued on commit. 409 when it cannot sync."""
    _require_admin(actor, workspace)
    _in_workspace(workspace, mailbox)
    if mailbox.sync_status == SyncStatus.RECONNECT_NEEDED:
        raise Conflict(
            "This mailbox must be reconnected first: "
            + (
                "enter its current password."
                if mailbox.provider == MailboxProvider.IMAP
                else "connect it to Microsoft 365 again."
            ),
            code="mailbox_reconnect_needed",
        )
    if not mailbox.is_active:
        raise Conflict("This mailbox is inactive: activate it first.", code="mailbox_inactive")
    config = EmailSyncConfig.objects.filter(mailbox=mailbox).first()
    if config is not None and not config.enabled:
        raise Conflict("Sync is turned off for this mailbox.", code="mailbox_sync_disabled")
    from integrations.tasks import enqueue_sync

    mailbox_id = mailbox.pk
    transaction.on_commit(lambda: enqueue_sync(mailbox_id))


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool | None  # None: not applicable (no SMTP server set, a Microsoft mailbox)
    message: str


def _check_smtp(mailbox: MailboxConnection) -> ConnectionCheck:
    if not mailbox.smtp_host:
        return ConnectionCheck(None, "No SMTP server is set.")
    port = mailbox.smtp_port or 587
    try:
        # The host is checked, then connected to by name (smtplib verifies TLS against the
        # name it connected to); a sending transport pins the address, a test need not.
        resolve_mail_host(mailbox.smtp_host, port)
        if mailbox.smtp_security == TransportSecurity.SSL:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                mailbox.smtp_host, port, timeout=TIMEOUT, context=tls_context()
            )
        else:
            client = smtplib.SMTP(mailbox.smtp_host, port, timeout=TIMEOUT)
            if mailbox.smtp_security == TransportSecurity.STARTTLS:
                client.starttls(context=tls_context())
        try:
            client.ehlo_or_helo_if_needed()
            if mailbox.smtp_username:
                client.login(mailbox.smtp_username, mailbox.smtp_password)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    except smtplib.SMTPAuthenticationError as exc:
        return ConnectionCheck(False, f"The SMTP server refused the login: {exc.smtp_code}.")
    except (MailError, smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        return ConnectionCheck(False, f"SMTP: {exc or type(exc).__name__}")
    return ConnectionCheck(True, f"Connected to {mailbox.smtp_host}:{port}.")


def mailbox_test_connection(
    *, workspace: Workspace, actor: Agent, mailbox: MailboxConnection
) -> dict[str, ConnectionCheck]:
    """Log in to IMAP and connect (and log in) to SMTP with the stored settings (admins).
    Nothing is saved; the result says what worked."""
    _require_admin(actor, workspace)
    _in_workspace(workspace, mailbox)
    if mailbox.provider != MailboxProvider.IMAP:
        skipped = ConnectionCheck(None, "Microsoft 365 mailboxes are checked by their sync.")
        return {"imap": skipped, "smtp": skipped}
    config = ImapSettings.of(mailbox)
    try:
        check_imap_login(config)
        imap = ConnectionCheck(True, f"Signed in to {config.host}:{config.port}.")
    except MailError as exc:
        imap = ConnectionCheck(False, str(exc))
    return {"imap": imap, "smtp": _check_smtp(mailbox)}
