"""Outbound HTTP for rules (call_webhook) and Microsoft Teams posts: signed, bounded, and
refused for addresses inside the network.

Signature. Each request carries::

    X-Enque-Timestamp: 1764075840                  (Unix seconds)
    X-Enque-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
    X-Enque-Delivery: 42                           (the same on every retry)

A receiver recomputes the HMAC over the timestamp, a dot and the raw body bytes with the
rule's secret, compares in constant time, and rejects old timestamps (replays). Without a
secret the signature header is left out.

Where a request may go. The host is resolved and *every* address it resolves to must be a
public one: loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 — cloud metadata
— and fe80::/10), shared (100.64/10), multicast, reserved and unspecified addresses are
refused, as are IPv4-mapped IPv6 forms of them, unless ``AUTOMATION_WEBHOOK_ALLOW_PRIVATE``
is on (for tests and on-premises receivers). The connection then goes to the address that
was checked (the Host header and TLS name stay the host's), so a DNS answer that changes
between check and connect (rebinding) cannot redirect it; redirects are not followed.

Delivery. ``delivery_enqueue`` stores the body exactly as it will be signed and sent and
enqueues ``automation.tasks.deliver_webhook`` on commit; ``delivery_attempt`` claims the
row (pending → sending), posts with ``AUTOMATION_WEBHOOK_TIMEOUT``, and on failure either
schedules the next attempt (exponential backoff, ``AUTOMATION_WEBHOOK_MAX_ATTEMPTS`` in all)
or records the final failure on the run and in the ticket's history.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from automation.models import (
    AutomationRun,
    RunStatus,
    WebhookDelivery,
    WebhookStatus,
)
from enque.errors import InvalidInput
from tickets.models import ActorType, TicketEvent, TicketEventKind

logger = logging.getLogger(__name__)

USER_AGENT = "Enque-Webhooks/1"
SIGNATURE_HEADER = "X-Enque-Signature"
TIMESTAMP_HEADER = "X-Enque-Timestamp"
DELIVERY_HEADER = "X-Enque-Delivery"
# The part of a failing response kept for the record.
ERROR_BODY_BYTES = 512
# Backoff between attempts: 30 s, 1 min, 2 min, 4 min... capped at an hour.
BACKOFF_BASE = 30
BACKOFF_MAX = 3600


class WebhookRefused(InvalidInput):
    default_code = "webhook_target_refused"


class WebhookFailed(Exception):
    """The receiver could not be reached, or did not answer 2xx."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def allow_private() -> bool:
    return bool(getattr(settings, "AUTOMATION_WEBHOOK_ALLOW_PRIVATE", False))


# --- Targets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str


def check_url(url: str, *, field: str = "url") -> Target:
    """The URL's parts if it is an http(s) URL we may call; else a 400 on ``field``.

    Address literals are checked here; names are resolved and checked at send time.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise WebhookRefused("Not a valid URL.", field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("The URL must start with http:// or https://.", field=field)
    if parts.username or parts.password:
        raise WebhookRefused("Put credentials in the signing secret, not in the URL.", field=field)
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not allow_private() and not _is_public(literal):
        raise WebhookRefused(
            "Webhooks to private, loopback or link-local addresses are not allowed.",
            field=field,
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(
        scheme=parts.scheme,
        host=host,
        port=port or (443 if parts.scheme == "https" else 80),
        path=path,
    )


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return _is_public(mapped)
    return address.is_global and not address.is_multicast


def resolve(target: Target) -> str:
    """The address to connect to: every address the host resolves to must be allowed."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookFailed(f"Cannot resolve {target.host}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise WebhookFailed(f"{target.host} has no address.")
    if not allow_private():
        for raw in addresses:
            address = ipaddress.ip_address(raw.split("%", 1)[0])
            if not _is_public(address):
                raise WebhookRefused(
                    f"{target.host} resolves to {address}, a private, loopback or "
                    "link-local address: refused."
                )
    return addresses[0]


# --- Signing and sending ----------------------------------------------------------------------


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (and the tests): constant-time comparison."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def post(
    url: str,
    body: bytes,
    *,
    secret: str = "",
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> int:
    """POST ``body`` to ``url``; returns the 2xx status, else raises ``WebhookFailed`` (or
    ``WebhookRefused`` for a forbidden target)."""
    target = check_url(url)
    address = resolve(target)
    timeout = timeout or float(getattr(settings, "AUTOMATION_WEBHOOK_TIMEOUT", 10))
    timestamp = str(int(time.time()))
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port not in (80, 443):
        host_header += f":{target.port}"
    all_headers = {
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: timestamp,
        **(headers or {}),
    }
    if secret:
        all_headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
    pool_timeout = urllib3.Timeout(connect=min(5.0, timeout), read=timeout)
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=pool_timeout,
            retries=False,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=pool_timeout, retries=False)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=all_headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        raise WebhookFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        pool.close()
    try:
        if 200 <= response.status < 300:
            return response.status
        excerpt = response.read(ERROR_BODY_BYTES, decode_content=False).decode("utf-8", "replace")
        raise WebhookFailed(f"HTTP {response.status}: {excerpt}".strip(), response.status)
    finally:
        response.release_conn()


# --- Rule deliveries --------------------------------------------------------------------------


def rule_payload(ctx: Any) -> dict[str, Any]:
    """The JSON a rule's webhook sends: the rule, the trigger and the ticket."""
    ticket = ctx.ticket
    automation = ctx.automation
    return {
        "event": "automation.fired",
        "workspace": ticket.workspace_id,
        "automation": {"id": automation.pk, "name": automation.name} if automation else None,
        "trigger": ctx.trigger,
        "ticket": {
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "channel": ticket.channel,
            "assignee": ticket.assignee_id,
            "team": ticket.team_id,
            "category": ticket.category_id,
            "customer": {
                "id": ticket.customer_id,
                "email": ticket.customer.email,
                "name": ticket.customer.name,
            },
            "tags": sorted(ticket.tags.values_list("name", flat=True)),
            "created_at": ticket.created_at,
            "updated_at": ticket.updated_at,
            "first_response_due_at": ticket.first_response_due_at,
            "sla_due_at": ticket.sla_due_at,
        },
        "sent_at": timezone.now(),
    }


def delivery_enqueue(*, ctx: Any, url: str, secret: str) -> WebhookDelivery:
    """Store the delivery and send it from the worker after commit."""
    from automation import tasks

    body = json.dumps(rule_payload(ctx), cls=DjangoJSONEncoder, separators=(",", ":"))
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            workspace_id=ctx.ticket.workspace_id,
            automation=ctx.automation,
            run=ctx.run,
            ticket=ctx.ticket,
            url=url,
            body=body,
            secret=secret,
            next_attempt_at=timezone.now(),
        )
        transaction.on_commit(lambda: tasks.deliver_webhook.delay(delivery.pk))
    return delivery


def backoff(attempts: int) -> int:
    return min(BACKOFF_BASE * 2 ** max(0, attempts - 1), BACKOFF_MAX)


def max_attempts() -> int:
    return max(1, int(getattr(settings, "AUTOMATION_WEBHOOK_MAX_ATTEMPTS", 5)))


def delivery_attempt(delivery_id: int) -> int | None:
    """One attempt; returns the seconds until the next one, or None when done.

    The claim (pending → sending, one UPDATE) makes a duplicate task a no-op.
    """
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookStatus.PENDING).update(
        status=WebhookStatus.SENDING, updated_at=now
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    attempts = delivery.attempts + 1
    try:
        status = post(
            delivery.url,
            delivery.body.encode(),
            secret=delivery.secret,
            headers={DELIVERY_HEADER: str(delivery.pk), "X-Enque-Event": "automation.fired"},
        )
    except (WebhookFailed, WebhookRefused) as exc:
        error = exc.message if isinstance(exc, WebhookRefused) else str(exc)
        final = isinstance(exc, WebhookRefused) or attempts >= max_attempts()
        logger.warning(
            "webhook delivery %s attempt %s failed%s: %s",
            delivery.pk,
            attempts,
            " (final)" if final else "",
            error,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookStatus.FAILED if final else WebhookStatus.PENDING,
            attempts=attempts,
            last_error=error[:2000],
            response_status=getattr(exc, "status", None),
            next_attempt_at=None if final else now + timedelta(seconds=backoff(attempts)),
            updated_at=timezone.now(),
        )
        if final:
            _record_failure(delivery, error, attempts)
            return None
        return backoff(attempts)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookStatus.SUCCEEDED,
        attempts=attempts,
        response_status=status,
        last_error="",
        next_attempt_at=None,
        delivered_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return None


def _record_failure(delivery: WebhookDelivery, error: str, attempts: int) -> None:
    """The rule's run and the ticket's history say the webhook finally failed."""
    host = urlsplit(delivery.url).hostname or ""
    entry = {
        "action_type": "call_webhook",
        "error": f"Webhook to {host} failed after {attempts} attempt(s): {error}"[:500],
    }
    with transaction.atomic():
        if delivery.run_id:
            run = AutomationRun.objects.select_for_update().filter(pk=delivery.run_id).first()
            if run is not None:
                run.errors = [*run.errors, entry]
                run.status = RunStatus.PARTIAL if run.status == RunStatus.SUCCEEDED else run.status
                run.save(update_fields=["errors", "status", "updated_at"])
        if delivery.ticket_id:
            TicketEvent.objects.create(
                workspace_id=delivery.workspace_id,
                ticket_id=delivery.ticket_id,
                kind=TicketEventKind.AUTOMATION,
                actor_type=ActorType.AUTOMATION,
                data={
                    "automation": delivery.automation_id,
                    "run": delivery.run_id,
                    "webhook_delivery": delivery.pk,
                    "errors": [entry],
                },
            )


def deliveries_lost(*, older_than: int = 120, limit: int = 200) -> list[int]:
    """Pending deliveries whose attempt is overdue by ``older_than`` seconds: their task
    was lost (a broker restart) and the every-minute sweep sends them again."""
    cutoff = timezone.now() - timedelta(seconds=older_than)
    return list(
        WebhookDelivery.objects.filter(status=WebhookStatus.PENDING, next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def teams_post(url: str, text: str) -> None:
    """A Microsoft Teams incoming-webhook message (a MessageCard with plain text)."""
    body = json.dumps(
        {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": text[:200],
            "text": text,
        }
    ).encode()
    post(url, body)
