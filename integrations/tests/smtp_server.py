"""A real SMTP server on 127.0.0.1 for the outbound tests (aiosmtpd, in a thread).

    with smtp_server(security="starttls", login=("support@acme.test", "s3cret")) as server:
        ...  # point a mailbox at server.host / server.port
        server.wait_for(1)
        server.messages[0].envelope_from, .recipients, .data (bytes), .parsed, .login

``security`` is ``none``, ``starttls`` (STARTTLS offered and required before AUTH and
MAIL) or ``ssl`` (implicit TLS), with a throwaway self-signed certificate for 127.0.0.1 and
``localhost`` generated with ``cryptography``; ``server.ca_file`` is its PEM, for
``MAIL_TLS_CA_FILE``. ``login`` turns on AUTH LOGIN / PLAIN and requires it.
``server.reject_next(code, text)`` makes the next DATA answer that instead of 250 (a 4xx to
test retries, a 5xx a permanent refusal).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from enque.testing import free_port

# aiosmtpd logs every command at INFO (and its deprecations at WARNING); a failing test's
# output needs none of it.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    data: bytes
    login: str | None
    tls: bool

    @property
    def parsed(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.rejections: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            if self.rejections:
                return self.rejections.pop(0)
            login = (
                session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
            )
            self.messages.append(
                Received(
                    envelope_from=envelope.mail_from,
                    recipients=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content),
                    login=login.decode() if isinstance(login, bytes) else login,
                    tls=server.transport.get_extra_info("sslcontext") is not None,
                )
            )
        return "250 2.0.0 Ok: queued as TEST" + str(len(self.messages))


class _Authenticator:
    def __init__(self, login: tuple[str, str]) -> None:
        self.login = login

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            given = (auth_data.login.decode(), auth_data.password.decode())
            if given == self.login:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


@dataclass
class SMTPServer:
    host: str
    port: int
    ca_file: str
    handler: _Handler

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def reject_next(self, code: int, text: str = "Try again later") -> None:
        with self.handler.lock:
            self.handler.rejections.append(f"{code} {text}")

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages
            if len(messages) >= count:
                return messages
            time.sleep(0.05)
        raise AssertionError(f"the SMTP server received {len(self.messages)} of {count} messages")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1 and localhost, valid for a day."""
    from integrations.tests.imap_server import make_certificate

    return make_certificate(directory, service="smtp")


@contextlib.contextmanager
def smtp_server(
    *, security: str = "none", login: tuple[str, str] | None = None
) -> Iterator[SMTPServer]:
    with tempfile.TemporaryDirectory(prefix="enque-smtp-") as tmp:
        cert, key = self_signed_certificate(Path(tmp))
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        handler = _Handler()
        server_kwargs: dict[str, Any] = {}
        if security == "starttls":
            server_kwargs.update(tls_context=server_context, require_starttls=True)
        if login is not None:
            server_kwargs.update(
                authenticator=_Authenticator(login),
                auth_required=True,
                # Implicit TLS is TLS from the first byte; aiosmtpd only counts STARTTLS.
                auth_require_tls=security == "starttls",
            )
        else:
            server_kwargs.update(auth_require_tls=False)
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=free_port(),
            ssl_context=server_context if security == "ssl" else None,
            ready_timeout=10,
            **server_kwargs,
        )
        controller.start()
        try:
            yield SMTPServer(
                host=controller.hostname, port=controller.port, ca_file=str(cert), handler=handler
            )
        finally:
            controller.stop()
