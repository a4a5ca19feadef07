"""IMAP in: connect, log in, and fetch a folder's new messages into the inbound pipeline.

Incremental by UID (RFC 3501): ``EmailSyncConfig`` keeps the folder's UIDVALIDITY and the
highest UID stored. A sync searches ``UID <last+1>:*`` and fetches the result in batches
with ``BODY.PEEK[]`` from a folder opened with EXAMINE, so the mailbox's read state is
never touched. The watermark advances after every stored message, so a crash mid-batch
resumes where it stopped. When the server's UIDVALIDITY changes (a rebuilt mailbox), the
old UIDs mean nothing: the watermark resets and the folder is fetched again; the pipeline's
Message-ID dedupe makes the refetch create nothing twice.

Errors are typed (``integrations.errors``): a refused login is ``ReconnectNeeded`` (an
admin must fix the credentials), network trouble and server hiccups
``TransientMailError`` (the next sync retries), a folder that does not exist or a host
that may not be reached ``PermanentMailError``.

Hosts are admin input in a multi-tenant service: unless ``MAIL_ALLOW_PRIVATE_HOSTS``, a
host resolving to a loopback, private or link-local address is refused, and the
connection goes to the address that was checked (no second DNS answer in between).
"""

from __future__ import annotations

import imaplib
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from integrations.errors import PermanentMailError, ReconnectNeeded, TransientMailError
from integrations.models import EmailSyncConfig, MailboxConnection, TransportSecurity

logger = logging.getLogger(__name__)

# Messages per UID FETCH: a round trip per batch, a bounded response in memory.
FETCH_BATCH = 25
# Seconds a connect or a read may take before the sync gives up (and retries next time).
TIMEOUT = 60
DEFAULT_PORTS = {TransportSecurity.SSL: 993, TransportSecurity.STARTTLS: 143, "none": 143}

_UID_RE = re.compile(rb"\bUID (\d+)")


@dataclass(frozen=True)
class ImapSettings:
    """What a connection needs; built from a mailbox, or from a form before it is saved."""

    host: str
    port: int
    security: str
    username: str
    password: str
    folder: str = "INBOX"

    @classmethod
    def of(cls, mailbox: MailboxConnection) -> ImapSettings:
        return cls(
            host=mailbox.imap_host,
            port=mailbox.imap_port or DEFAULT_PORTS.get(mailbox.imap_security, 993),
            security=mailbox.imap_security,
            username=mailbox.imap_username,
            password=mailbox.imap_password,
            folder=mailbox.imap_folder or "INBOX",
        )


# --- Where we may connect ---------------------------------------------------------------


def resolve_mail_host(host: str, port: int) -> str:
    """The address to connect to for ``host``; refuses private ones unless allowed."""
    host = (host or "").strip()
    if not host:
        raise PermanentMailError("No server host is set.")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientMailError(f"Cannot resolve {host}: {exc}") from None
    addresses = [info[4][0] for info in infos]
    if not getattr(settings, "MAIL_ALLOW_PRIVATE_HOSTS", False):
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global or ip.is_multicast:
                raise PermanentMailError(
                    f"{host} resolves to {address}, a private, loopback or link-local "
                    "address, which mail servers may not use here."
                )
    return addresses[0]


def tls_context() -> ssl.SSLContext:
    """Certificate-verifying TLS; ``MAIL_TLS_CA_FILE`` adds CAs (a private mail server's)."""
    context = ssl.create_default_context()
    ca_file = getattr(settings, "MAIL_TLS_CA_FILE", "")
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


class _PinnedAddress:
    """Connect to the checked address while TLS still verifies the host name."""

    _pinned_address: str

    def _create_socket(self, timeout: float | None) -> socket.socket:
        address = (self._pinned_address, self.port)  # type: ignore[attr-defined]
        if timeout is not None and not timeout:
            raise ValueError("Non-blocking socket (timeout=0) is not supported")
        return socket.create_connection(address, timeout)


class _IMAP4(_PinnedAddress, imaplib.IMAP4):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self._pinned_address = address
        super().__init__(host, port, timeout=timeout)


class _IMAP4_SSL(_PinnedAddress, imaplib.IMAP4_SSL):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self._pinned_address = address
        super().__init__(host, port, ssl_context=tls_context(), timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = _PinnedAddress._create_socket(self, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(data: Any) -> str:
    parts = data if isinstance(data, list) else [data]
    return " ".join(
        p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p)
        for p in parts
        if p is not None
    )


@contextmanager
def imap_session(config: ImapSettings) -> Iterator[imaplib.IMAP4]:
    """A logged-in connection (TLS as configured); logs out at the end."""
    if config.security not in TransportSecurity.values:
        raise PermanentMailError(f"Unknown IMAP security {config.security!r}.")
    address = resolve_mail_host(config.host, config.port)
    try:
        if config.security == TransportSecurity.SSL:
            conn: imaplib.IMAP4 = _IMAP4_SSL(config.host, config.port, address, TIMEOUT)
        else:
            conn = _IMAP4(config.host, config.port, address, TIMEOUT)
            if config.security == TransportSecurity.STARTTLS:
                conn.starttls(ssl_context=tls_context())
    except ssl.SSLCertVerificationError as exc:
        raise PermanentMailError(
            f"The certificate of {config.host} is not trusted: {exc.verify_message}."
        ) from None
    except (OSError, imaplib.IMAP4.error) as exc:
        raise TransientMailError(
            f"Cannot connect to {config.host}:{config.port}: {exc or type(exc).__name__}"
        ) from None
    try:
        try:
            conn.login(_quote(config.username), config.password)
        except imaplib.IMAP4.error as exc:
            raise ReconnectNeeded(
                f"The IMAP server refused the login for {config.username}: {_text(exc.args)}. "
                "Check the user name and password."
            ) from None
        except UnicodeEncodeError:
            raise ReconnectNeeded(
                "The user name or password has characters IMAP LOGIN cannot send (ASCII only)."
            ) from None
        yield conn
    except (OSError, imaplib.IMAP4.abort) as exc:
        raise TransientMailError(f"The IMAP connection failed: {exc}") from None
    finally:
        with suppress(OSError, imaplib.IMAP4.error):
            conn.logout()


def check_imap_login(config: ImapSettings) -> None:
    """Connect, log in and open the folder; raise the typed error when anything fails."""
    with imap_session(config) as conn:
        _examine(conn, config.folder)


# --- The sync ---------------------------------------------------------------------------


def _examine(conn: imaplib.IMAP4, folder: str) -> int:
    """Open ``folder`` read-only; return its UIDVALIDITY."""
    status, data = conn.select(_quote(folder), readonly=True)
    if status != "OK":
        raise PermanentMailError(f"The IMAP folder {folder!r} cannot be opened: {_text(data)}.")
    _, values = conn.response("UIDVALIDITY")
    try:
        return int(values[0])
    except (TypeError, ValueError, IndexError):
        raise TransientMailError("The IMAP server sent no UIDVALIDITY for the folder.") from None


def _new_uids(conn: imaplib.IMAP4, after: int) -> list[int]:
    status, data = conn.uid("SEARCH", "UID", f"{after + 1}:*")
    if status != "OK":
        raise TransientMailError(f"UID SEARCH failed: {_text(data)}")
    uids = sorted({int(word) for word in b" ".join(d for d in data if d).split()})
    # "n:*" always names the last message, even when its UID is below n (RFC 3501 6.4.8).
    return [uid for uid in uids if uid > after]


def _uid_set(uids: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1:3,7"``."""
    ranges: list[str] = []
    start = previous = uids[0]
    for uid in uids[1:]:
        if uid != previous + 1:
            ranges.append(f"{start}:{previous}" if start != previous else str(start))
            start = uid
        previous = uid
    ranges.append(f"{start}:{previous}" if start != previous else str(start))
    return ",".join(ranges)


def _fetch(conn: imaplib.IMAP4, uids: list[int]) -> dict[int, bytes]:
    status, data = conn.uid("FETCH", _uid_set(uids), "(UID BODY.PEEK[])")
    if status != "OK":
        raise TransientMailError(f"UID FETCH failed: {_text(data)}")
    messages: dict[int, bytes] = {}
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            match = _UID_RE.search(item[0])
            if match:
                messages[int(match.group(1))] = item[1]
    return messages


def sync_config_for(mailbox: MailboxConnection) -> EmailSyncConfig:
    config, _ = EmailSyncConfig.objects.get_or_create(
        mailbox=mailbox,
        defaults={"workspace_id": mailbox.workspace_id, "folder": mailbox.imap_folder},
    )
    return config


def sync_imap_mailbox(mailbox: MailboxConnection, *, heartbeat: Any = None) -> int:
    """Fetch the folder's new messages into the pipeline; return how many were new.

    ``heartbeat()``, when given, is called after every batch (the sync lock's keep-alive).
    """
    from integrations.inbound.pipeline import ingest_many

    settings_ = ImapSettings.of(mailbox)
    config = sync_config_for(mailbox)
    stored = 0
    with imap_session(settings_) as conn:
        uidvalidity = _examine(conn, settings_.folder)
        if config.imap_uidvalidity != uidvalidity:
            if config.imap_uidvalidity is not None:
                logger.warning(
                    "UIDVALIDITY of mailbox %s changed (%s -> %s): refetching the folder",
                    mailbox.pk,
                    config.imap_uidvalidity,
                    uidvalidity,
                )
            config.imap_uidvalidity, config.imap_last_uid = uidvalidity, 0
            config.save(update_fields=["imap_uidvalidity", "imap_last_uid", "updated_at"])
        uids = _new_uids(conn, config.imap_last_uid)
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start : start + FETCH_BATCH]
            messages = _fetch(conn, batch)
            # Outside any transaction: the pipeline commits the batch's raw rows first,
            # then processes them in one transaction (a savepoint each).
            rows = ingest_many(
                mailbox,
                [(messages[uid], f"{uidvalidity}:{uid}") for uid in batch if uid in messages],
            )
            stored += sum(not row.was_duplicate for row in rows)
            # A UID that vanished between SEARCH and FETCH (expunged) is passed too.
            with transaction.atomic():
                EmailSyncConfig.objects.filter(pk=config.pk).update(imap_last_uid=batch[-1])
            config.imap_last_uid = batch[-1]
            if heartbeat is not None:
                heartbeat()
    return stored
