"""Microsoft Graph over ``requests``, for one mailbox.

Every call sends ``Prefer: IdType="ImmutableId"`` so message ids survive moves between
folders (the dedupe key is the id). Throttling (429, 503, 504) is honoured with the
``Retry-After`` Graph sends, within GRAPH_MAX_RETRY_WAIT seconds in all; past that the call
raises TransientMailError carrying the wait, and the next sync goes on. A 401 gets one
forced token refresh, then means the grant is gone (ReconnectNeeded). Paging links are
followed only to Graph's own host: the access token must never be sent anywhere else.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings
from django.utils import timezone

from integrations.errors import PermanentMailError, ReconnectNeeded, TransientMailError
from integrations.microsoft.config import GRAPH_HOST, GRAPH_ROOT, mailbox_root
from integrations.microsoft.msal_app import mailbox_access_token
from integrations.models import MailboxConnection

logger = logging.getLogger(__name__)

IMMUTABLE_IDS = 'IdType="ImmutableId"'
THROTTLED = frozenset({429, 503, 504})
# Attempts per call, whatever the waits: a server answering 429 with "Retry-After: 0"
# forever must not spin.
MAX_ATTEMPTS = 6
TIMEOUT = (10, 120)

# Tests replace this to record the waits instead of sleeping.
sleep: Callable[[float], None] = time.sleep


class SyncStateGone(PermanentMailError):
    """HTTP 410 on a delta link: Graph forgot the sync state; a full resync is needed."""


class GraphNotFound(PermanentMailError):
    """HTTP 404: the message (or folder) is not there, e.g. deleted a moment ago."""


def graph_error(response: requests.Response) -> tuple[str, str]:
    """(code, message) of a Graph error body, tolerant of non-JSON answers."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return "", response.text[:200]
    if isinstance(error, str):
        return error, ""
    return str(error.get("code", "")), str(error.get("message", ""))[:300]


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def is_graph_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and parts.hostname == GRAPH_HOST and parts.port in (None, 443)


class GraphClient:
    """Authenticated Graph calls for ``mailbox`` (its own or a shared mailbox's root)."""

    def __init__(self, mailbox: MailboxConnection, *, session: requests.Session | None = None):
        self.mailbox = mailbox
        self.session = session or requests.Session()
        self.root = mailbox_root(mailbox)
        self._token: str | None = None

    def url(self, path: str) -> str:
        """An absolute Graph URL for a path under the mailbox root (``/messages/…``)."""
        root = "/".join(quote(part, safe="@") for part in self.root.split("/"))
        return f"{GRAPH_ROOT}{root}{path}"

    @staticmethod
    def message_path(message_id: str) -> str:
        return f"/messages/{quote(message_id, safe='')}"

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        if not is_graph_url(url):
            raise PermanentMailError(
                f"Refusing to send the mailbox's token to {urlsplit(url).hostname!r}: "
                "not Microsoft Graph."
            )
        waited = 0.0
        refreshed = False
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self._token is None:
                self._token = mailbox_access_token(self.mailbox)
            sent_headers = {
                **(headers or {}),
                "Authorization": f"Bearer {self._token}",
                "Prefer": ", ".join(filter(None, [IMMUTABLE_IDS, (headers or {}).get("Prefer")])),
            }
            try:
                response = self.session.request(
                    method, url, headers=sent_headers, timeout=TIMEOUT, **kwargs
                )
            except requests.RequestException as exc:
                raise TransientMailError(f"Microsoft Graph is unreachable: {exc}") from exc
            if response.status_code == 401:
                if refreshed:
                    code, message = graph_error(response)
                    raise ReconnectNeeded(
                        f"Microsoft Graph refused the mailbox's token ({code or 401}): connect "
                        f"the mailbox again. {message}".strip()
                    )
                # The token may have been revoked early or the cache held a stale one.
                self._token = mailbox_access_token(self.mailbox, force_refresh=True)
                refreshed = True
                continue
            if response.status_code in THROTTLED:
                wait = retry_after_seconds(response)
                wait = float(2**attempt) if wait is None else wait
                budget = settings.GRAPH_MAX_RETRY_WAIT - waited
                if attempt == MAX_ATTEMPTS or wait > budget:
                    raise TransientMailError(
                        f"Microsoft Graph is throttling the mailbox (HTTP "
                        f"{response.status_code}); try again in {wait:.0f}s.",
                        retry_after=wait,
                    )
                logger.info(
                    "graph throttled",
                    extra={"status": response.status_code, "wait": wait, "url": url},
                )
                sleep(wait)
                waited += wait
                continue
            return self._checked(response)
        raise TransientMailError("Microsoft Graph kept refusing the request.")  # pragma: no cover

    def _checked(self, response: requests.Response) -> requests.Response:
        status = response.status_code
        if status < 400:
            return response
        code, message = graph_error(response)
        detail = f"Microsoft Graph answered {status} {code}: {message}".strip()
        if status == 410:
            raise SyncStateGone(detail)
        if status == 404:
            raise GraphNotFound(detail)
        if status >= 500:
            raise TransientMailError(detail, retry_after=retry_after_seconds(response))
        if status == 403 and code in {"ErrorAccessDenied", "Authorization_RequestDenied"}:
            raise PermanentMailError(
                f"{detail} — the signed-in account lacks access to this mailbox "
                "(for a shared mailbox it needs Full Access and Send As)."
            )
        raise PermanentMailError(detail)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def follow(self, link: str) -> str:
        """A paging/delta link from Graph, checked to point back at Graph."""
        if not is_graph_url(link):
            raise PermanentMailError(
                f"Microsoft Graph returned a paging link to {urlsplit(link).hostname!r}; "
                "refusing to follow it."
            )
        return link
