"""A small IMAP4rev1 server on loopback, for the IMAP sync tests and the browser test.

It speaks the part of RFC 3501 a mail client that fetches needs: CAPABILITY, NOOP, LOGIN,
STARTTLS, SELECT / EXAMINE (with EXISTS, UIDVALIDITY, UIDNEXT), UID SEARCH, UID FETCH
(UID, FLAGS, RFC822.SIZE, BODY[] / BODY.PEEK[] / RFC822), and LOGOUT; in plain text, over
implicit TLS ("ssl"), or upgraded with STARTTLS. TLS uses a throwaway self-signed
certificate made with ``cryptography`` for 127.0.0.1 and localhost; ``ca_file`` is its
path, to trust in the client (``settings.MAIL_TLS_CA_FILE``).

Messages are appended to a folder (``server.folder("INBOX").append(raw)``) with ascending
UIDs; ``renumber()`` gives the folder a new UIDVALIDITY and new UIDs, as a server does
when it rebuilds a mailbox. Fetching ``BODY[]`` from a folder opened with SELECT sets
``\\Seen`` (as real servers do); ``BODY.PEEK[]`` and EXAMINE never do. Every command is
logged in ``server.commands`` so tests can check what a client asked for.

    with ImapTestServer(users={"help@acme.test": "s3cret"}, security="ssl") as server:
        server.folder("INBOX").append(raw_bytes)
        ... connect to server.host / server.port ...
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import socketserver
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SECURITIES = ("none", "ssl", "starttls")
_TOKEN_RE = re.compile(rb'"((?:[^"\\]|\\.)*)"|(\S+)')


@dataclass
class StoredMessage:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


class Folder:
    """One mailbox on the server. Thread-safe: the test appends while a client reads."""

    def __init__(self, name: str, uidvalidity: int) -> None:
        self.name = name
        self.uidvalidity = uidvalidity
        self.messages: list[StoredMessage] = []
        self.next_uid = 1
        self.lock = threading.Lock()

    def append(self, raw: bytes, *, flags: tuple[str, ...] = ()) -> int:
        with self.lock:
            uid = self.next_uid
            self.next_uid += 1
            self.messages.append(StoredMessage(uid=uid, raw=bytes(raw), flags=set(flags)))
            return uid

    def renumber(self, uidvalidity: int, *, first_uid: int = 1) -> None:
        """A new UIDVALIDITY and new UIDs for the same messages (a rebuilt mailbox)."""
        with self.lock:
            self.uidvalidity = uidvalidity
            for offset, message in enumerate(self.messages):
                message.uid = first_uid + offset
            self.next_uid = first_uid + len(self.messages)

    def expunge(self, uid: int) -> None:
        with self.lock:
            self.messages = [m for m in self.messages if m.uid != uid]

    def seen(self, uid: int) -> bool:
        with self.lock:
            return any(m.uid == uid and "\\Seen" in m.flags for m in self.messages)


def make_certificate(directory: Path, service: str = "imap") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost, valid for a day: (cert PEM, key
    PEM). The test SMTP server uses it too (``service="smtp"``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    common_name = f"Enque test {service.upper()} server"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{service}-cert.pem", directory / f"{service}-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def parse_uid_set(text: str, largest: int) -> set[int] | None:
    """The UIDs an RFC 3501 sequence set names (``*`` is the largest UID), else None."""
    result: set[int] = set()
    for part in text.split(","):
        ends = part.split(":")
        if len(ends) > 2:
            return None
        try:
            numbers = [largest if end == "*" else int(end) for end in ends]
        except ValueError:
            return None
        low, high = min(numbers), max(numbers)
        # "n:*" with n above the largest UID is "largest:n": it names the last message
        # (RFC 3501 6.4.8), the quirk clients must filter out.
        result.update(range(low, high + 1))
    return result


class _Handler(socketserver.StreamRequestHandler):
    server: _TCPServer
    timeout = 30

    def setup(self) -> None:
        if self.server.owner.security == "ssl":
            self.request = self.server.owner.tls_context.wrap_socket(self.request, server_side=True)
        super().setup()
        self.tls = self.server.owner.security == "ssl"
        self.user: str | None = None
        self.folder: Folder | None = None
        self.readonly = True

    # --- I/O ------------------------------------------------------------------------------

    def send(self, line: bytes | str) -> None:
        if isinstance(line, str):
            line = line.encode()
        self.wfile.write(line + b"\r\n")

    def handle(self) -> None:
        owner = self.server.owner
        self.send(f"* OK [CAPABILITY {self.capabilities()}] Enque test IMAP ready")
        while True:
            try:
                line = self.rfile.readline(65536)
            except (OSError, ssl.SSLError):
                return
            if not line:
                return
            line = line.rstrip(b"\r\n")
            tag, _, rest = line.partition(b" ")
            command, _, args = rest.partition(b" ")
            name = command.decode(errors="replace").upper()
            owner.commands.append(f"{name} {args.decode(errors='replace')}".strip())
            if name == "LOGIN":
                owner.commands[-1] = "LOGIN ***"
            try:
                keep_going = self.dispatch(tag.decode(errors="replace"), name, args)
            except (OSError, ssl.SSLError):
                return
            self.wfile.flush()
            if not keep_going:
                return

    def capabilities(self) -> str:
        words = ["IMAP4rev1", "UIDPLUS"]
        if self.server.owner.security == "starttls" and not getattr(self, "tls", False):
            words += ["STARTTLS", "LOGINDISABLED"]
        return " ".join(words)

    # --- commands -------------------------------------------------------------------------

    def dispatch(self, tag: str, name: str, args: bytes) -> bool:
        owner = self.server.owner
        if name == "CAPABILITY":
            self.send(f"* CAPABILITY {self.capabilities()}")
            self.send(f"{tag} OK CAPABILITY completed")
        elif name == "NOOP":
            if self.folder is not None:
                self.send(f"* {len(self.folder.messages)} EXISTS")
            self.send(f"{tag} OK NOOP completed")
        elif name == "LOGOUT":
            self.send("* BYE Logging out")
            self.send(f"{tag} OK LOGOUT completed")
            return False
        elif name == "STARTTLS":
            if owner.security != "starttls" or self.tls:
                self.send(f"{tag} BAD STARTTLS not available")
                return True
            self.send(f"{tag} OK Begin TLS negotiation now")
            self.wfile.flush()
            self.request = owner.tls_context.wrap_socket(self.request, server_side=True)
            self.rfile = self.request.makefile("rb")
            self.wfile = socketserver._SocketWriter(self.request)  # type: ignore[attr-defined]
            self.tls = True
        elif name == "LOGIN":
            self.login(tag, args)
        elif name in ("SELECT", "EXAMINE"):
            self.select(tag, args, readonly=name == "EXAMINE")
        elif name == "UID":
            self.uid_command(tag, args)
        else:
            self.send(f"{tag} BAD Unknown command")
        return True

    def login(self, tag: str, args: bytes) -> None:
        owner = self.server.owner
        if owner.security == "starttls" and not self.tls:
            self.send(f"{tag} NO [PRIVACYREQUIRED] Use STARTTLS first")
            return
        tokens = _tokens(args)
        if len(tokens) != 2:
            self.send(f"{tag} BAD LOGIN takes a user name and a password")
            return
        user, password = tokens
        if owner.users.get(user) != password:
            self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
            return
        self.user = user
        self.send(f"{tag} OK [CAPABILITY {self.capabilities()}] Logged in")

    def select(self, tag: str, args: bytes, *, readonly: bool) -> None:
        # A slow server, for tests that need a sync to be in progress for a while.
        time.sleep(self.server.owner.select_delay)
        if self.user is None:
            self.send(f"{tag} BAD Log in first")
            return
        tokens = _tokens(args)
        folder = self.server.owner.folders.get(tokens[0].upper() if tokens else "")
        if folder is None:
            self.folder = None
            self.send(f"{tag} NO [NONEXISTENT] No such mailbox")
            return
        self.folder, self.readonly = folder, readonly
        with folder.lock:
            self.send(r"* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)")
            self.send(f"* {len(folder.messages)} EXISTS")
            self.send("* 0 RECENT")
            self.send(f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid")
            self.send(f"* OK [UIDNEXT {folder.next_uid}] Predicted next UID")
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        self.send(f"{tag} OK [{mode}] {'EXAMINE' if readonly else 'SELECT'} completed")

    def uid_command(self, tag: str, args: bytes) -> None:
        if self.folder is None:
            self.send(f"{tag} BAD Select a mailbox first")
            return
        sub, _, rest = args.partition(b" ")
        sub_name = sub.decode(errors="replace").upper()
        text = rest.decode(errors="replace").strip()
        folder = self.folder
        with folder.lock:
            largest = folder.messages[-1].uid if folder.messages else 0
            if sub_name == "SEARCH":
                words = text.split()
                if words[:1] == ["ALL"]:
                    uids = [m.uid for m in folder.messages]
                elif len(words) == 2 and words[0].upper() == "UID":
                    wanted = parse_uid_set(words[1], largest)
                    if wanted is None:
                        self.send(f"{tag} BAD Invalid UID set")
                        return
                    uids = [m.uid for m in folder.messages if m.uid in wanted]
                else:
                    self.send(f"{tag} BAD Only UID and ALL searches are supported")
                    return
                self.send("* SEARCH" + "".join(f" {uid}" for uid in uids))
                self.send(f"{tag} OK SEARCH completed")
            elif sub_name == "FETCH":
                uid_set, _, items = text.partition(" ")
                wanted = parse_uid_set(uid_set, largest)
                if wanted is None:
                    self.send(f"{tag} BAD Invalid UID set")
                    return
                items = items.strip().strip("()").upper()
                for position, message in enumerate(folder.messages, start=1):
                    if message.uid in wanted:
                        self.fetch_one(position, message, items)
                self.send(f"{tag} OK FETCH completed")
            else:
                self.send(f"{tag} BAD Unsupported UID command")

    def fetch_one(self, position: int, message: StoredMessage, items: str) -> None:
        body_items = items.replace("RFC822.SIZE", "")
        wants_body = any(i in body_items for i in ("BODY[]", "BODY.PEEK[]", "RFC822"))
        peek = "BODY.PEEK[]" in body_items
        if wants_body and not peek and not self.readonly:
            message.flags.add("\\Seen")
        parts = [f"UID {message.uid}"]
        if "FLAGS" in items:
            parts.append(f"FLAGS ({' '.join(sorted(message.flags))})")
        if "RFC822.SIZE" in items:
            parts.append(f"RFC822.SIZE {len(message.raw)}")
        head = f"* {position} FETCH (" + " ".join(parts)
        if wants_body:
            label = "RFC822" if "RFC822" in body_items else "BODY[]"
            self.wfile.write(f"{head} {label} {{{len(message.raw)}}}\r\n".encode())
            self.wfile.write(message.raw)
            self.wfile.write(b")\r\n")
        else:
            self.send(head + ")")


def _tokens(args: bytes) -> list[str]:
    tokens = []
    for quoted, atom in _TOKEN_RE.findall(args):
        if atom:
            tokens.append(atom.decode("utf-8", errors="replace"))
        else:
            tokens.append(re.sub(rb"\\(.)", rb"\1", quoted).decode("utf-8", errors="replace"))
    return tokens


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ImapTestServer


class ImapTestServer:
    """A threaded IMAP server on 127.0.0.1 and an ephemeral port (see the module doc)."""

    def __init__(
        self,
        *,
        users: dict[str, str],
        security: str = "none",
        uidvalidity: int = 1001,
    ) -> None:
        if security not in SECURITIES:
            raise ValueError(f"security must be one of {SECURITIES}")
        self.users = dict(users)
        self.security = security
        self.folders: dict[str, Folder] = {"INBOX": Folder("INBOX", uidvalidity)}
        self.commands: list[str] = []
        # Seconds SELECT/EXAMINE waits before answering.
        self.select_delay = 0.0
        self._tmp = tempfile.TemporaryDirectory(prefix="enque-imap-")
        cert, key = make_certificate(Path(self._tmp.name))
        self.ca_file = str(cert)
        self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls_context.load_cert_chain(cert, key)
        self._server = _TCPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def folder(self, name: str = "INBOX") -> Folder:
        key = name.upper()
        if key not in self.folders:
            self.folders[key] = Folder(name, uidvalidity=1001)
        return self.folders[key]

    def start(self) -> ImapTestServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="imap-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._tmp.cleanup()

    def __enter__(self) -> ImapTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def raw_message(
    *,
    subject: str,
    sender: str = "carol@customer.test",
    to: str = "help@acme.test",
    body: str = "Hello!",
    message_id: str | None = None,
) -> bytes:
    """A small plain-text RFC 5322 message."""
    if message_id is None:
        digest = hashlib.sha256(f"{subject}|{sender}|{body}".encode()).hexdigest()[:24]
        message_id = f"<{digest}@customer.test>"
    return (
        f"From: Carol Customer <{sender}>\r\n"
        f"To: {to}\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()
