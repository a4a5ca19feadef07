"""SMTP out for IMAP/SMTP mailboxes: one message, one connection, errors sorted by kind.

``send_smtp`` connects with the mailbox's transport security (implicit TLS, STARTTLS or,
for a local relay, none), logs in with the decrypted password when a username is set, and
hands the server the MIME bytes with the mailbox address as envelope sender. Every failure
comes out as one of the mail errors of ``integrations.errors``, so the outbound sender can
decide from the type alone:

- ``ReconnectNeeded``: the server refused the login (the password changed or was revoked);
- ``PermanentMailError``: a 5xx answer (recipient or message refused), no SMTP server
  configured, a certificate that does not verify, STARTTLS not offered;
- ``TransientMailError``: a 4xx answer, a dropped connection, a timeout, a refused
  connection (the server may be restarting).

Hosts are checked and certificates verified as for IMAP (``integrations.imap``): a host
resolving to a private, loopback or link-local address is refused unless
``MAIL_ALLOW_PRIVATE_HOSTS``, the connection goes to the address that was checked, and TLS
trusts the system's CAs plus ``MAIL_TLS_CA_FILE``.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Sequence

from django.conf import settings

from integrations.errors import PermanentMailError, ReconnectNeeded, TransientMailError
from integrations.imap import resolve_mail_host, tls_context
from integrations.models import MailboxConnection, TransportSecurity

DEFAULT_PORTS = {
    TransportSecurity.SSL: 465,
    TransportSecurity.STARTTLS: 587,
    TransportSecurity.NONE: 25,
}


def send_smtp(
    mailbox: MailboxConnection, *, mime: bytes, sender: str, recipients: Sequence[str]
) -> str:
    """Send ``mime`` through the mailbox's SMTP server; returns the server's answer to the
    message (usually carrying its queue id), kept as the provider id."""
    if not mailbox.smtp_host:
        raise PermanentMailError(f"The mailbox {mailbox.email_address} has no SMTP server set.")
    if not recipients:
        raise PermanentMailError("The message has no recipient.")
    try:
        with _connect(mailbox) as client:
            if mailbox.smtp_username:
                client.login(mailbox.smtp_username, mailbox.smtp_password or "")
            client.ehlo_or_helo_if_needed()
            code, answer = client.mail(sender)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, answer, sender)
            refused = {}
            for recipient in recipients:
                code, answer = client.rcpt(recipient)
                if code not in (250, 251):
                    refused[recipient] = (code, answer)
            if len(refused) == len(recipients):
                client.rset()
                raise smtplib.SMTPRecipientsRefused(refused)
            code, answer = client.data(mime)
            if code != 250:
                raise smtplib.SMTPDataError(code, answer)
    except smtplib.SMTPAuthenticationError as exc:
        raise ReconnectNeeded(f"The SMTP server refused the login: {_answer(exc)}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _answer in exc.recipients.values()]
        detail = "; ".join(
            f"{address}: {code} {_text(answer)}"
            for address, (code, answer) in exc.recipients.items()
        )
        if all(400 <= code < 500 for code in codes):
            raise TransientMailError(f"Recipient deferred: {detail}") from exc
        raise PermanentMailError(f"Recipient refused: {detail}") from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentMailError(f"The SMTP server does not support this: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        # Sender refused, data refused, or any other coded answer: 4xx means "try later".
        if 400 <= exc.smtp_code < 500:
            raise TransientMailError(f"The SMTP server deferred: {_answer(exc)}") from exc
        raise PermanentMailError(f"The SMTP server refused: {_answer(exc)}") from exc
    except ssl.SSLCertVerificationError as exc:
        raise PermanentMailError(
            f"The SMTP server's certificate does not verify: {exc.verify_message or exc}"
        ) from exc
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        # Connection refused or dropped, DNS, timeouts (socket.timeout is an OSError).
        raise TransientMailError(f"Could not talk to the SMTP server: {_describe(exc)}") from exc
    return _text(answer)[:400]


class _SMTP(smtplib.SMTP):
    """Connects to the checked address; STARTTLS still verifies the host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        self._pinned_address = address
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._pinned_address, port), timeout)


class _SMTP_SSL(smtplib.SMTP_SSL):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        self._pinned_address = address
        super().__init__(host, port, timeout=timeout, context=tls_context())

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((self._pinned_address, port), timeout)
        return self.context.wrap_socket(sock, server_hostname=self._host)


def _connect(mailbox: MailboxConnection) -> smtplib.SMTP:
    security = mailbox.smtp_security
    host = mailbox.smtp_host.strip()
    port = mailbox.smtp_port or DEFAULT_PORTS.get(security, 587)
    address = resolve_mail_host(host, port)
    timeout = settings.SMTP_TIMEOUT
    if security == TransportSecurity.SSL:
        return _SMTP_SSL(host, port, address=address, timeout=timeout)
    client = _SMTP(host, port, address=address, timeout=timeout)
    try:
        if security == TransportSecurity.STARTTLS:
            client.ehlo()
            # Never fall back to plain text when the mailbox asks for STARTTLS.
            if not client.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("STARTTLS is not offered by the server.")
            client.starttls(context=tls_context())
            client.ehlo()
    except BaseException:
        client.close()
        raise
    return client


def _text(answer: bytes | str) -> str:
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    return " ".join(answer.split())


def _answer(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
