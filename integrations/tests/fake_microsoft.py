"""A fake Microsoft identity platform and Graph mail API, at the HTTP layer.

MSAL and ``requests`` run for real; the ``responses`` library answers their HTTP calls with
the documented shapes:

- identity (``login.microsoftonline.com``): instance discovery, the OpenID configuration,
  the v2.0 token endpoint for the ``authorization_code`` grant (PKCE S256 verified against
  the challenge of the authorize URL, redirect URI and client secret checked, an id token
  carrying the flow's nonce, ``client_info``) and the ``refresh_token`` grant (the refresh
  token rotates: the old one stops working, as a strict server may);
- Graph (``graph.microsoft.com/v1.0``): ``/me``, mailbox delta queries with
  ``@odata.nextLink`` / ``@odata.deltaLink`` paging and ``@removed`` entries,
  ``/messages/{id}/$value``, ``sendMail`` and draft creation from base64 MIME,
  ``createUploadSession`` and the upload URL's chunked PUTs, ``/send``;
- switches a test flips: ``throttle_next``, ``expire_delta_tokens``, ``revoke``,
  ``foreign_next_link``.

The user "signs in" with ``consent(authorization_url, user)``, which returns the query
Microsoft would redirect back with.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import responses

AUTHORITY = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com/v1.0"
UPLOAD_HOST = "https://outlook.office.com"
TENANT = "7c1f0e4a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "fake-client-secret"
CHUNK_UNIT = 320 * 1024

Reply = tuple[int, dict[str, str], str | bytes]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict[str, Any]) -> str:
    """An id token as MSAL reads it (MSAL decodes the claims; it does not check signatures)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": "fake"}
    return ".".join(
        [b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), "c2ln"]
    )


def error(status: int, code: str, message: str) -> Reply:
    return (
        status,
        {"Content-Type": "application/json"},
        json.dumps({"error": {"code": code, "message": message}}),
    )


def token_error(code: str, description: str) -> Reply:
    return (
        400,
        {"Content-Type": "application/json"},
        json.dumps({"error": code, "error_description": description, "error_codes": [70000]}),
    )


@dataclass
class FakeUser:
    email: str
    oid: str
    name: str
    upn: str
    email_verified: bool = True
    tenant: str = TENANT


@dataclass
class FakeMailbox:
    address: str
    messages: dict[str, bytes] = field(default_factory=dict)
    # Every change in order: (message id, removed?). A delta token is a position in it.
    log: list[tuple[str, bool]] = field(default_factory=list)


@dataclass
class Upload:
    message_id: str
    name: str
    size: int
    content_type: str
    data: bytearray = field(default_factory=bytearray)
    puts: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Sent:
    mailbox: str
    mime: bytes
    attachments: list[Upload] = field(default_factory=list)

    @property
    def message(self) -> Any:
        return message_from_bytes(self.mime, policy=policy.default)


class FakeMicrosoft:
    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.users: dict[str, FakeUser] = {}
        self.mailboxes: dict[str, FakeMailbox] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, str] = {}  # token -> user email
        self.access_tokens: dict[str, tuple[str, float]] = {}  # token -> (email, expiry)
        self.revoked: set[str] = set()
        self.token_lifetime = 3600
        self.page_size = 10
        self.delta_generation = 1
        self.foreign_next_link = False
        self._throttle: list[tuple[int, str]] = []
        self._failures: list[tuple[int, str, str]] = []
        self._snapshots: dict[str, tuple[str, list[tuple[str, bool]], int]] = {}
        self._ids = itertools.count(1)
        self.graph_requests: list[Any] = []
        self.token_requests: list[dict[str, str]] = []
        self.sent: list[Sent] = []
        self.drafts: dict[str, Sent] = {}
        self.uploads: dict[str, Upload] = {}
        self._register()

    @classmethod
    @contextmanager
    def running(cls, settings: Any) -> Iterator[FakeMicrosoft]:
        """The fake, with the deployment's app pointed at it (pytest-django ``settings``)."""
        settings.MICROSOFT_CLIENT_ID = CLIENT_ID
        settings.MICROSOFT_CLIENT_SECRET = CLIENT_SECRET
        settings.MICROSOFT_TENANT_ID = "organizations"
        settings.MICROSOFT_AUTHORITY_HOST = AUTHORITY
        settings.MICROSOFT_REDIRECT_BASE_URL = "https://enque.test"
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            yield cls(mock)

    # --- the test's controls -------------------------------------------------------------

    def add_user(
        self, email: str, *, name: str = "", email_verified: bool = True, upn: str = ""
    ) -> FakeUser:
        """An account in the fake tenant; ``upn`` defaults to the address (the usual case)."""
        n = next(self._ids)
        user = FakeUser(
            email=email,
            oid=f"00000000-0000-0000-0000-{n:012d}",
            name=name or email.split("@")[0].title(),
            upn=upn or email,
            email_verified=email_verified,
        )
        self.users[email.lower()] = user
        self.mailbox(email)
        return user

    def mailbox(self, address: str) -> FakeMailbox:
        return self.mailboxes.setdefault(address.lower(), FakeMailbox(address=address))

    def deliver(self, address: str, mime: bytes) -> str:
        """A message arrives in the mailbox's inbox; returns its immutable id."""
        box = self.mailbox(address)
        message_id = f"AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A{next(self._ids):08d}AAA="
        box.messages[message_id] = mime
        box.log.append((message_id, False))
        return message_id

    def delete(self, address: str, message_id: str) -> None:
        box = self.mailbox(address)
        del box.messages[message_id]
        box.log.append((message_id, True))

    def throttle_next(self, count: int, *, status: int = 429, retry_after: str = "2") -> None:
        self._throttle.extend([(status, retry_after)] * count)

    def fail_next(self, status: int, code: str, message: str) -> None:
        """The next Graph call answers this error."""
        self._failures.append((status, code, message))

    def expire_delta_tokens(self) -> None:
        """Graph forgets every sync state: old delta links answer 410."""
        self.delta_generation += 1

    def revoke(self, email: str) -> None:
        """The user's grant is revoked (password reset, admin revocation)."""
        self.revoked.add(email.lower())

    def consent(self, authorization_url: str, user: FakeUser) -> dict[str, str]:
        """The user signs in and consents; the query Microsoft redirects back with."""
        parts = urlsplit(authorization_url)
        assert f"{parts.scheme}://{parts.netloc}" == AUTHORITY
        assert parts.path.endswith("/oauth2/v2.0/authorize")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query["client_id"] == self.client_id
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        code = f"code-{next(self._ids)}"
        self.codes[code] = {"user": user.email.lower(), **query}
        return {"code": code, "state": query["state"], "session_state": "fake-session"}

    # --- wiring ----------------------------------------------------------------------------

    def _register(self) -> None:
        add = self.mock.add_callback
        add(
            responses.GET,
            re.compile(re.escape(AUTHORITY) + r"/common/discovery/instance.*"),
            callback=self._instance_discovery,
        )
        add(
            responses.GET,
            re.compile(re.escape(AUTHORITY) + r"/[^/]+/v2\.0/\.well-known/openid-configuration"),
            callback=self._openid_configuration,
        )
        add(
            responses.POST,
            re.compile(re.escape(AUTHORITY) + r"/[^/]+/oauth2/v2\.0/token"),
            callback=self._token,
        )
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            add(method, re.compile(re.escape(GRAPH) + r"/.*"), callback=self._graph)
        add(responses.PUT, re.compile(re.escape(UPLOAD_HOST) + r"/.*"), callback=self._upload_put)

    # --- identity ------------------------------------------------------------------------

    def _instance_discovery(self, request: Any) -> Reply:
        body = {
            "tenant_discovery_endpoint": (
                f"{AUTHORITY}/organizations/v2.0/.well-known/openid-configuration"
            ),
            "api-version": "1.1",
            "metadata": [
                {
                    "preferred_network": "login.microsoftonline.com",
                    "preferred_cache": "login.windows.net",
                    "aliases": [
                        "login.microsoftonline.com",
                        "login.windows.net",
                        "login.microsoft.com",
                        "sts.windows.net",
                    ],
                }
            ],
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _openid_configuration(self, request: Any) -> Reply:
        tenant = urlsplit(request.url).path.split("/")[1]
        body = {
            "authorization_endpoint": f"{AUTHORITY}/{tenant}/oauth2/v2.0/authorize",
            "token_endpoint": f"{AUTHORITY}/{tenant}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{AUTHORITY}/{tenant}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{AUTHORITY}/{tenant}/oauth2/v2.0/logout",
            "issuer": f"{AUTHORITY}/{{tenantid}}/v2.0",
            "response_types_supported": ["code", "id_token", "code id_token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _token(self, request: Any) -> Reply:
        form = {k: v[0] for k, v in parse_qs(request.body or "").items()}
        self.token_requests.append(form)
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return (
                401,
                {"Content-Type": "application/json"},
                json.dumps(
                    {"error": "invalid_client", "error_description": "AADSTS7000215: bad secret."}
                ),
            )
        grant = form.get("grant_type")
        if grant == "authorization_code":
            pending = self.codes.pop(form.get("code", ""), None)
            if pending is None:
                return token_error("invalid_grant", "AADSTS70008: The code was already used.")
            verifier = form.get("code_verifier", "")
            challenge = b64url(hashlib.sha256(verifier.encode()).digest())
            if challenge != pending["code_challenge"]:
                return token_error("invalid_grant", "AADSTS501481: code_verifier mismatch.")
            if form.get("redirect_uri") != pending["redirect_uri"]:
                return token_error("invalid_grant", "AADSTS50148: redirect_uri mismatch.")
            user = self.users[pending["user"]]
            return self._issue(user, pending["scope"], nonce=pending.get("nonce"))
        if grant == "refresh_token":
            email = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if email is None or email in self.revoked:
                return token_error(
                    "invalid_grant",
                    "AADSTS50173: The provided grant has expired due to it being revoked.",
                )
            return self._issue(self.users[email], form.get("scope", ""))
        return token_error("unsupported_grant_type", f"{grant} is not supported.")

    def _issue(self, user: FakeUser, scope: str, *, nonce: str | None = None) -> Reply:
        now = int(time.time())
        # Long random tokens: a test can look for one in stored ciphertext without a chance
        # match.
        access = f"at-{secrets.token_hex(16)}"
        refresh = f"rt-{secrets.token_hex(16)}"
        email = user.email.lower()
        self.access_tokens[access] = (email, now + self.token_lifetime)
        self.refresh_tokens[refresh] = email
        claims = {
            "aud": self.client_id,
            "iss": f"{AUTHORITY}/{user.tenant}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": user.name,
            "oid": user.oid,
            "preferred_username": user.upn,
            "sub": f"sub-{user.oid}",
            "tid": user.tenant,
            "ver": "2.0",
            "email": user.email,
            "xms_edov": user.email_verified,
        }
        if nonce:
            claims["nonce"] = nonce
        granted = [s for s in scope.split() if s not in {"openid", "profile", "offline_access"}]
        body = {
            "token_type": "Bearer",
            "scope": " ".join([*granted, "openid", "profile"]),
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": make_jwt(claims),
            "client_info": b64url(json.dumps({"uid": user.oid, "utid": user.tenant}).encode()),
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    # --- Graph ---------------------------------------------------------------------------

    def _graph(self, request: Any) -> Reply:
        self.graph_requests.append(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        owner = self.access_tokens.get(token)
        if owner is None or owner[1] < time.time() or owner[0] in self.revoked:
            return error(401, "InvalidAuthenticationToken", "Access token has expired.")
        if self._throttle:
            status, retry_after = self._throttle.pop(0)
            body = json.dumps(
                {"error": {"code": "TooManyRequests", "message": "Application is over its limit."}}
            )
            return status, {"Content-Type": "application/json", "Retry-After": retry_after}, body
        if self._failures:
            return error(*self._failures.pop(0))
        parts = urlsplit(request.url)
        path = unquote(parts.path.removeprefix("/v1.0"))
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if path == "/me" and request.method == "GET":
            user = self.users[owner[0]]
            body = {
                "id": user.oid,
                "displayName": user.name,
                "userPrincipalName": user.upn,
                "mail": user.email,
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(body)
        match = re.fullmatch(r"/(me|users/[^/]+)(/.*)", path)
        if not match:
            return error(400, "BadRequest", f"Unsupported path {path}")
        root, rest = match.groups()
        address = owner[0] if root == "me" else root.removeprefix("users/").lower()
        if address not in self.mailboxes:
            return error(404, "ErrorInvalidUser", "The requested user is invalid.")
        box = self.mailboxes[address]
        prefix = f"{GRAPH}/{root if root == 'me' else 'users/' + box.address}"
        method = request.method
        if method == "GET" and rest == "/mailFolders/inbox/messages/delta":
            return self._delta(box, prefix, query)
        if method == "GET" and (m := re.fullmatch(r"/messages/([^/]+)/\$value", rest)):
            mime = box.messages.get(m.group(1))
            if mime is None:
                return error(404, "ErrorItemNotFound", "The specified object was not found.")
            return 200, {"Content-Type": "text/plain"}, mime
        if method == "POST" and rest == "/sendMail":
            mime = self._mime_body(request)
            if isinstance(mime, tuple):
                return mime
            self.sent.append(Sent(mailbox=box.address, mime=mime))
            return 202, {}, ""
        if method == "POST" and rest == "/messages":
            mime = self._mime_body(request)
            if isinstance(mime, tuple):
                return mime
            draft_id = f"draft-{next(self._ids)}"
            self.drafts[draft_id] = Sent(mailbox=box.address, mime=mime)
            body = {"id": draft_id, "isDraft": True}
            return 201, {"Content-Type": "application/json"}, json.dumps(body)
        if method == "POST" and (
            m := re.fullmatch(r"/messages/([^/]+)/attachments/createUploadSession", rest)
        ):
            draft_id = m.group(1)
            if draft_id not in self.drafts:
                return error(404, "ErrorItemNotFound", "The specified object was not found.")
            item = json.loads(request.body)["AttachmentItem"]
            assert item["attachmentType"] == "file"
            session_id = f"session-{next(self._ids)}"
            self.uploads[session_id] = Upload(
                message_id=draft_id,
                name=item["name"],
                size=int(item["size"]),
                content_type=item.get("contentType", ""),
            )
            body = {
                "uploadUrl": f"{UPLOAD_HOST}/api/v2.0/Users('{owner[0]}')/Messages('{draft_id}')"
                f"/AttachmentSessions('{session_id}')?authtoken=upload-{session_id}",
                "expirationDateTime": "2030-01-01T00:00:00Z",
                "nextExpectedRanges": ["0-"],
            }
            return 201, {"Content-Type": "application/json"}, json.dumps(body)
        if method == "POST" and (m := re.fullmatch(r"/messages/([^/]+)/send", rest)):
            draft = self.drafts.pop(m.group(1), None)
            if draft is None:
                return error(404, "ErrorItemNotFound", "The specified object was not found.")
            draft.attachments = [u for u in self.uploads.values() if u.message_id == m.group(1)]
            self.sent.append(draft)
            return 202, {}, ""
        if method == "DELETE" and (m := re.fullmatch(r"/messages/([^/]+)", rest)):
            self.drafts.pop(m.group(1), None)
            return 204, {}, ""
        return error(400, "BadRequest", f"Unsupported {method} {path}")

    @staticmethod
    def _mime_body(request: Any) -> bytes | Reply:
        if request.headers.get("Content-Type", "").split(";")[0] != "text/plain":
            return error(415, "UnsupportedMediaType", "MIME content must be text/plain base64.")
        try:
            return base64.b64decode(request.body, validate=True)
        except ValueError:
            return error(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string.")

    def _delta(self, box: FakeMailbox, prefix: str, query: dict[str, str]) -> Reply:
        if "$skiptoken" in query:
            snapshot = self._snapshots.get(query["$skiptoken"])
            if snapshot is None:
                return error(410, "syncStateNotFound", "The sync state is not found.")
            key, items, offset = snapshot[0], snapshot[1], snapshot[2]
        elif "$deltatoken" in query:
            generation, _, position = query["$deltatoken"].partition("-")
            if int(generation) != self.delta_generation:
                return error(410, "syncStateNotFound", "The sync state generation is not found.")
            items = box.log[int(position) :]
            # The newest state per id, as Graph reports changes.
            items = list({mid: (mid, removed) for mid, removed in items}.values())
            key, offset = f"{len(box.log)}", 0
        else:
            items = [(mid, False) for mid in box.messages]
            key, offset = f"{len(box.log)}", 0
        page = items[offset : offset + self.page_size]
        value = [
            {
                "@odata.type": "#microsoft.graph.message",
                "id": mid,
                "@removed": {"reason": "deleted"},
            }
            if removed
            else {"@odata.type": "#microsoft.graph.message", "@odata.etag": 'W/"x"', "id": mid}
            for mid, removed in page
        ]
        body: dict[str, Any] = {"@odata.context": f"{GRAPH}/$metadata#Collection(message)"}
        body["value"] = value
        if offset + self.page_size < len(items):
            skip = f"skip-{next(self._ids)}"
            self._snapshots[skip] = (key, items, offset + self.page_size)
            # A compromised or spoofed answer pointing the client elsewhere.
            base = "https://graph.evil.example/v1.0/me" if self.foreign_next_link else prefix
            body["@odata.nextLink"] = f"{base}/mailFolders/inbox/messages/delta?$skiptoken={skip}"
        else:
            body["@odata.deltaLink"] = (
                f"{prefix}/mailFolders/inbox/messages/delta"
                f"?$deltatoken={self.delta_generation}-{key}"
            )
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _upload_put(self, request: Any) -> Reply:
        if "Authorization" in request.headers:
            return error(401, "InvalidAuthenticationToken", "No Authorization on upload URLs.")
        session_id = re.search(r"AttachmentSessions\('([^']+)'\)", request.url).group(1)
        upload = self.uploads[session_id]
        header = request.headers["Content-Range"]
        upload.puts.append({"Content-Range": header, "length": str(len(request.body))})
        start, end, total = map(int, re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", header).groups())
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        if start != len(upload.data) or end - start + 1 != len(body) or total != upload.size:
            return error(416, "InvalidRange", f"Unexpected range {header}.")
        if end + 1 < total and len(body) % CHUNK_UNIT:
            return error(400, "InvalidChunk", "Chunks must be multiples of 320 KiB.")
        upload.data.extend(body)
        if len(upload.data) == upload.size:
            return 201, {"Location": f"{GRAPH}/me/messages/{upload.message_id}/attachments/a"}, ""
        body_json = {
            "expirationDateTime": "2030-01-01T00:00:00Z",
            "nextExpectedRanges": [f"{len(upload.data)}-"],
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body_json)


def connect_mailbox(
    fake: FakeMicrosoft,
    *,
    admin: Any,
    user: FakeUser,
    address: str | None = None,
    shared: bool = False,
    integration_id: int | None = None,
) -> Any:
    """Connect a mailbox the way an admin does: consent through the real MSAL flow."""
    from integrations.microsoft import oauth
    from integrations.microsoft.mailboxes import mailbox_connect_finish, mailbox_connect_start

    binding = oauth.new_binding()
    url, state = mailbox_connect_start(
        workspace=admin.workspace,
        actor=admin,
        email_address=address or user.email,
        is_shared_mailbox=shared,
        integration_id=integration_id,
        redirect_uri="https://enque.test/settings/mailboxes/microsoft/callback",
        binding=binding,
    )
    return mailbox_connect_finish(
        state=state, binding=binding, auth_response=fake.consent(url, user), actor=admin
    )


def plain_message(
    subject: str,
    *,
    sender: str = "carol@customer.test",
    to: str = "support@acme.test",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    body: str = "Hello, I need help.",
) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Wed, 25 Nov 2026 10:00:00 +0000"
    message["Message-ID"] = message_id or f"<{hashlib.sha256(subject.encode()).hexdigest()}@x.test>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    return message.as_bytes()
