"""Rule webhooks: a receiver can verify the signature; loopback, private and link-local
targets are refused by default; a failing webhook is retried, then recorded, and the
change that triggered it stays committed."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from automation import webhooks
from automation.models import AutomationRun, RunStatus, WebhookDelivery, WebhookStatus
from automation.tests.support import write_in
from tickets.models import Ticket, TicketEvent, TicketEventKind

pytestmark = pytest.mark.django_db

SECRET = "whsec_3f9a"


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"nope" if receiver.status >= 400 else b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/enque?src=test"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as server:
        yield server


def test_a_receiver_can_verify_the_signature(rule, customer_a, receiver, hooks_run) -> None:
    automation = rule("ticket_created", actions=[("call_webhook", {"url": receiver.url}, SECRET)])

    with hooks_run():
        ticket = write_in(customer_a, "Webhook me")

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    headers = request["headers"]
    assert request["path"] == "/hooks/enque?src=test"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Enque-Signature"].startswith("sha256=")
    # What a receiver does: HMAC-SHA256 over "<timestamp>." + the raw body, with the secret.
    assert webhooks.verify(
        SECRET, headers["X-Enque-Timestamp"], request["body"], headers["X-Enque-Signature"]
    )
    assert not webhooks.verify(
        "wrong", headers["X-Enque-Timestamp"], request["body"], headers["X-Enque-Signature"]
    )
    assert not webhooks.verify(
        SECRET, headers["X-Enque-Timestamp"], request["body"] + b" ", headers["X-Enque-Signature"]
    )
    payload = json.loads(request["body"])
    assert payload["event"] == "automation.fired"
    assert payload["automation"] == {"id": automation.pk, "name": automation.name}
    assert payload["ticket"]["number"] == ticket.number
    assert payload["ticket"]["subject"] == "Webhook me"
    delivery = WebhookDelivery.objects.get()
    assert headers["X-Enque-Delivery"] == str(delivery.pk)
    assert delivery.status == WebhookStatus.SUCCEEDED and delivery.attempts == 1
    assert delivery.response_status == 200


def test_the_signature_is_the_documented_hmac() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.signature("k", 1700000000, body) == f"sha256={expected}"


def test_a_failing_webhook_is_retried_then_recorded_and_the_change_stays(
    rule, customer_a, settings, hooks_run
) -> None:
    settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = True
    settings.AUTOMATION_WEBHOOK_MAX_ATTEMPTS = 3
    with Receiver(status=503) as down:
        rule(
            "ticket_created",
            actions=[
                ("call_webhook", {"url": down.url}, SECRET),
                ("add_tags", {"tags": ["after-webhook"]}),
            ],
        )
        with hooks_run():
            ticket = write_in(customer_a, "Still here")

    assert len(down.requests) == 3  # tasks run inline in tests: the retries too
    ticket.refresh_from_db()
    assert ticket.subject == "Still here"
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["after-webhook"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookStatus.FAILED and delivery.attempts == 3
    assert delivery.response_status == 503 and "HTTP 503" in delivery.last_error
    run = AutomationRun.objects.get()
    assert run.status == RunStatus.PARTIAL
    assert "failed after 3 attempt(s)" in run.errors[0]["error"]
    failure = TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.AUTOMATION).last()
    assert failure.data["webhook_delivery"] == delivery.pk
    assert "HTTP 503" in failure.data["errors"][0]["error"]


def test_an_unreachable_webhook_is_recorded(rule, customer_a, settings, hooks_run) -> None:
    settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = True
    settings.AUTOMATION_WEBHOOK_MAX_ATTEMPTS = 1
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rule("ticket_created", actions=[("call_webhook", {"url": f"http://127.0.0.1:{port}/"})])

    with hooks_run():
        ticket = write_in(customer_a)

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookStatus.FAILED
    assert "Connection" in delivery.last_error or "refused" in delivery.last_error.lower()
    assert Ticket.objects.filter(pk=ticket.pk, subject="Help please").exists()


def test_a_retry_waits_with_backoff(customer_a, settings) -> None:
    settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = True
    settings.AUTOMATION_WEBHOOK_MAX_ATTEMPTS = 5
    with Receiver(status=500) as down:
        delivery = WebhookDelivery.objects.create(
            workspace=customer_a.workspace, url=down.url, body="{}", secret=SECRET
        )
        first = webhooks.delivery_attempt(delivery.pk)
        second = webhooks.delivery_attempt(delivery.pk)

    assert (first, second) == (30, 60)
    delivery.refresh_from_db()
    assert delivery.status == WebhookStatus.PENDING and delivery.attempts == 2
    assert delivery.next_attempt_at is not None


def test_a_delivery_is_claimed_once(customer_a, receiver) -> None:
    delivery = WebhookDelivery.objects.create(
        workspace=customer_a.workspace, url=receiver.url, body="{}"
    )
    assert webhooks.delivery_attempt(delivery.pk) is None
    assert webhooks.delivery_attempt(delivery.pk) is None  # already delivered: no-op
    assert len(receiver.requests) == 1
    assert "X-Enque-Signature" not in receiver.requests[0]["headers"]  # no secret, no signature


# --- Targets we refuse ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_private_targets_are_refused_by_default(url: str) -> None:
    with pytest.raises(webhooks.WebhookRefused):
        webhooks.check_url(url)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "http://user:pw@example.com/", "nope"]
)
def test_other_schemes_and_credentials_are_refused(url: str) -> None:
    with pytest.raises(webhooks.WebhookRefused):
        webhooks.check_url(url)


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch) -> None:
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)

    # Every address counts: one private answer among public ones is enough to refuse.
    with pytest.raises(webhooks.WebhookRefused, match=r"10\.0\.0\.7"):
        webhooks.post("https://rebind.example.com/hook", b"{}")


def test_localhost_by_name_is_refused(customer_a) -> None:
    delivery = WebhookDelivery.objects.create(
        workspace=customer_a.workspace, url="http://localhost:9/hook", body="{}"
    )
    assert webhooks.delivery_attempt(delivery.pk) is None  # refused: final at once
    delivery.refresh_from_db()
    assert delivery.status == WebhookStatus.FAILED and delivery.attempts == 1
    assert "refused" in delivery.last_error


def test_a_rule_with_a_loopback_webhook_is_refused_when_saved(rule) -> None:
    from enque.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        rule("ticket_created", actions=[("call_webhook", {"url": "http://127.0.0.1/x"})])
    assert caught.value.field == "actions.0.params.url"


def test_loopback_is_allowed_only_when_configured(settings) -> None:
    settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = True
    assert webhooks.check_url("http://127.0.0.1:8000/hook").port == 8000
