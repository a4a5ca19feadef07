"""Agent notifications: who is told what, @mentions resolved exactly and within the
workspace, preferences honoured, the live push, Teams posts, digests sent once, and the
API."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from channels.layers import get_channel_layer
from django.core import mail

from automation import digests, notifications, services
from automation.models import DigestDelivery, Notification
from automation.tests.support import agent_in, team_with, write_in
from automation.tests.test_webhooks import Receiver
from tickets.actors import Actor
from tickets.services import comment_create, ticket_update
from tickets.tests.api_support import error, light_agent

pytestmark = pytest.mark.django_db


def note(ticket, author, text, hooks_run):
    with hooks_run():
        comment_create(ticket=ticket, actor=Actor.for_agent(author), body_text=text, internal=True)


def recipients(kind: str) -> list[str]:
    return sorted(
        Notification.objects.filter(kind=kind).values_list("recipient__user__email", flat=True)
    )


# --- Who is told what -------------------------------------------------------------------------


def test_an_assignment_notifies_the_new_assignee(alice, bob, customer_a, hooks_run) -> None:
    ticket = write_in(customer_a)
    with hooks_run():
        ticket_update(ticket=ticket, actor=Actor.for_agent(alice), assignee=bob)

    notification = Notification.objects.get()
    assert notification.recipient == bob and notification.kind == "assigned"
    assert notification.ticket == ticket
    assert (
        notification.data["message"] == f"Ticket #{ticket.number} was assigned to you: Help please"
    )
    assert [m.to for m in mail.outbox] == [["bob@a.test"]]
    assert f"/tickets/{ticket.number}" in mail.outbox[0].body


def test_taking_a_ticket_yourself_notifies_nobody(bob, customer_a, hooks_run) -> None:
    ticket = write_in(customer_a)
    with hooks_run():
        ticket_update(ticket=ticket, actor=Actor.for_agent(bob), assignee=bob)
    assert not Notification.objects.exists() and not mail.outbox


def test_a_customer_reply_notifies_the_assignee(bob, customer_a, hooks_run) -> None:
    ticket = write_in(customer_a, assignee=bob)
    with hooks_run():
        comment_create(ticket=ticket, actor=Actor.for_customer(customer_a), body_text="Any news?")
    assert recipients("customer_replied") == ["bob@a.test"]


def test_a_mention_notifies_exactly_the_named_agents_of_the_workspace(
    alice, bob, charlie, workspace_a, workspace_b, customer_a, hooks_run
) -> None:
    dana = agent_in(workspace_a, "dana.smith@a.test", "Dana Smith")
    agent_in(workspace_a, "dana.jones@a.test", "Dana Jones")
    agent_in(workspace_a, "bobby@a.test", "Bobby Tables")  # "@bob" is not "@bobby"
    agent_in(workspace_b, "bob@b.test", "Bob Agent")  # the same name, in workspace B
    ticket = write_in(customer_a)

    note(
        ticket,
        alice,
        "@Bob Agent and @dana.smith: the printer again. @dana alone is ambiguous; "
        "mail bob@a.test, and @alice is me. @nobody-here.",
        hooks_run,
    )

    assert recipients("mentioned") == ["bob@a.test", "dana.smith@a.test"]
    notified = Notification.objects.get(recipient=dana)
    assert notified.data["by_agent"] == alice.pk
    assert "Alice Admin mentioned you" in notified.data["message"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@bob", ["bob@a.test"]),
        ("thanks @Bob!", ["bob@a.test"]),
        ("(@bobagent)", ["bob@a.test"]),
        ("@BOB AGENT, look", ["bob@a.test"]),
        ("@bobby", []),
        ("bob@a.test", []),
        ("email@bob", []),
        ("@ bob", []),
    ],
)
def test_mention_handles(alice, bob, customer_a, hooks_run, text, expected) -> None:
    note(write_in(customer_a), alice, text, hooks_run)
    assert recipients("mentioned") == expected


def test_a_public_reply_mentions_nobody(alice, bob, customer_a, hooks_run) -> None:
    ticket = write_in(customer_a)
    with hooks_run():
        comment_create(ticket=ticket, actor=Actor.for_agent(alice), body_text="cc @bob")
    assert recipients("mentioned") == []


# --- Preferences ------------------------------------------------------------------------------


def test_preferences_are_honoured(alice, bob, customer_a, hooks_run) -> None:
    services.notification_preference_set(agent=bob, kind="assigned", in_app=False)
    services.notification_preference_set(agent=bob, kind="mentioned", email=False)
    services.notification_preference_set(
        agent=bob, kind="customer_replied", in_app=False, email=False
    )
    ticket = write_in(customer_a)

    with hooks_run():
        ticket_update(ticket=ticket, actor=Actor.for_agent(alice), assignee=bob)
        comment_create(ticket=ticket, actor=Actor.for_agent(alice), body_text="@bob", internal=True)
        comment_create(ticket=ticket, actor=Actor.for_customer(customer_a), body_text="Hello?")

    # assigned: email only; mentioned: in-app only; customer_replied: nothing.
    assert list(Notification.objects.values_list("kind", flat=True)) == ["mentioned"]
    assert [m.subject for m in mail.outbox] == [
        f"Ticket #{ticket.number} was assigned to you: Help please"
    ]


# --- The live push ----------------------------------------------------------------------------


async def receive_until(layer, channel: str, event_type: str) -> list[dict]:
    """The events on ``channel`` up to the first of ``event_type`` (one event loop: the
    Redis layer's receive must not be spread over several)."""
    events: list[dict] = []
    while not events or events[-1]["type"] != event_type:
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        assert message["type"] == "realtime.event"
        events.append({**json.loads(message["text"]), "_agents_only": message["agents_only"]})
    return events


@pytest.mark.redis
def test_a_notification_is_pushed_to_the_agents_channel(alice, bob, customer_a, hooks_run):
    layer = get_channel_layer()
    group = f"ws.{bob.workspace_id}.agent.{bob.pk}"
    joined = threading.Event()

    async def listen() -> list[dict]:
        # A socket's channel and groups live in one event loop (the pub/sub layer keeps
        # them there), so the listener runs in a loop of its own while the test publishes.
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        joined.set()
        try:
            return await receive_until(layer, channel, "notification.created")
        finally:
            await layer.group_discard(group, channel)

    with ThreadPoolExecutor(max_workers=1) as executor:
        listening = executor.submit(asyncio.run, listen())
        assert joined.wait(timeout=5)
        ticket = write_in(customer_a)
        with hooks_run():
            ticket_update(ticket=ticket, actor=Actor.for_agent(alice), assignee=bob)
        events = listening.result(timeout=10)

    # The realtime app's own ticket.assigned comes first: it subscribed to the hooks first.
    assert [e["type"] for e in events] == ["ticket.assigned", "notification.created"]
    event = events[-1]
    assert event["_agents_only"] is True
    assert event["workspace"] == bob.workspace_id and event["ticket"] == ticket.number
    assert event["data"]["kind"] == "assigned"
    assert event["data"]["id"] == Notification.objects.get().pk


def test_a_push_that_fails_is_logged_and_the_notification_kept(
    alice, bob, customer_a, hooks_run, monkeypatch, caplog
) -> None:
    class Down:
        async def group_send(self, group, message):
            raise OSError("redis is down")

    monkeypatch.setattr(notifications, "get_channel_layer", lambda: Down())
    ticket = write_in(customer_a)

    with hooks_run():
        ticket_update(ticket=ticket, actor=Actor.for_agent(alice), assignee=bob)

    assert Notification.objects.filter(recipient=bob).exists()
    assert "could not push" in caplog.text
    ticket.refresh_from_db()
    assert ticket.assignee == bob


# --- Microsoft Teams --------------------------------------------------------------------------


def test_a_team_with_a_teams_webhook_hears_of_its_new_tickets(
    alice, bob, workspace_a, customer_a, settings, hooks_run
) -> None:
    settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as teams:
        team = team_with(workspace_a, bob, name="Hardware")
        team.teams_webhook_url = teams.url
        team.save(update_fields=["teams_webhook_url"])
        ticket = write_in(customer_a, "Printer on fire")

        with hooks_run():
            ticket_update(ticket=ticket, actor=Actor.for_agent(alice), team=team)

    assert len(teams.requests) == 1
    card = json.loads(teams.requests[0]["body"])
    assert card["@type"] == "MessageCard"
    assert card["text"] == f"Ticket #{ticket.number} is now with the team: Printer on fire"


def test_a_team_without_a_teams_webhook_posts_nothing(alice, workspace_a, customer_a, hooks_run):
    team = team_with(workspace_a, alice, name="Quiet")
    ticket = write_in(customer_a)
    with hooks_run():
        ticket_update(ticket=ticket, actor=Actor.for_agent(alice), team=team)
    assert notifications.teams_send(team.pk, "hello") is False


# --- Digests ----------------------------------------------------------------------------------

# Monday 23 November 2026, 08:30 in Berlin (07:30 UTC).
MONDAY_830_BERLIN = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)


@pytest.fixture
def berlin(workspace_a):
    workspace_a.timezone = "Europe/Berlin"
    workspace_a.save(update_fields=["timezone"])
    return workspace_a


def test_digests_go_out_once(berlin, alice, bob, customer_a) -> None:
    from tickets.models import Ticket

    write_in(customer_a, "Open one", assignee=bob)
    write_in(customer_a, "Open two", assignee=bob)
    # Written last week (Wednesday 18 November), so the weekly summary has news for all.
    Ticket.objects.update(created_at=datetime(2026, 11, 18, 12, 0, tzinfo=UTC))

    too_early = digests.digests_send(now=MONDAY_830_BERLIN - timedelta(hours=1))
    first = digests.digests_send(now=MONDAY_830_BERLIN)
    again = digests.digests_send(now=MONDAY_830_BERLIN + timedelta(minutes=15))
    tomorrow = digests.digests_send(now=MONDAY_830_BERLIN + timedelta(days=1))

    assert too_early == {"sent": 0, "skipped": 0}
    assert again == {"sent": 0, "skipped": 0}
    daily = [m for m in mail.outbox if "outstanding" in m.subject]
    weekly = [m for m in mail.outbox if "week in review" in m.subject]
    # Daily: Bob on Monday and on Tuesday; the others have nothing outstanding (skipped).
    assert [m.to for m in daily] == [["bob@a.test"], ["bob@a.test"]]
    assert "Open one" in daily[0].body and "2 outstanding" in daily[0].body
    # Weekly: once, on Monday, to every agent (the workspace had a week).
    assert sorted(m.to[0] for m in weekly) == ["alice@a.test", "bob@a.test", "olivia@a.test"]
    assert first["sent"] == 4 and tomorrow["sent"] == 1
    assert DigestDelivery.objects.filter(agent=bob, kind="daily_digest").count() == 2
    skipped = DigestDelivery.objects.filter(agent=alice, kind="daily_digest")
    assert list(skipped.values_list("status", flat=True)) == ["skipped", "skipped"]


def test_digest_preferences_are_honoured(berlin, bob, customer_a) -> None:
    services.notification_preference_set(agent=bob, kind="daily_digest", email=False)
    services.notification_preference_set(agent=bob, kind="weekly_digest", email=False)
    write_in(customer_a, assignee=bob)

    digests.digests_send(now=MONDAY_830_BERLIN)

    assert "bob@a.test" not in {m.to[0] for m in mail.outbox}
    assert not DigestDelivery.objects.filter(agent=bob).exists()


def test_a_digest_that_fails_to_send_is_tried_again(berlin, bob, customer_a, monkeypatch):
    write_in(customer_a, assignee=bob)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OSError("smtp down")
        return 1

    monkeypatch.setattr(digests, "send_mail", flaky)
    digests.digests_send(now=MONDAY_830_BERLIN)
    sent_before = DigestDelivery.objects.filter(agent=bob, kind="daily_digest", status="sent")
    assert not sent_before.exists()
    digests.digests_send(now=MONDAY_830_BERLIN + timedelta(minutes=15))
    assert DigestDelivery.objects.get(agent=bob, kind="daily_digest").status == "sent"


# --- API --------------------------------------------------------------------------------------


@pytest.fixture
def bobs(alice, bob, customer_a, hooks_run):
    tickets = [write_in(customer_a, f"T{i}") for i in range(3)]
    with hooks_run():
        for ticket in tickets:
            ticket_update(ticket=ticket, actor=Actor.for_agent(alice), assignee=bob)
    with hooks_run():  # one for Alice, so that lists have someone else's to leave out
        ticket_update(ticket=tickets[0], actor=Actor.for_agent(bob), assignee=alice)
    return list(Notification.objects.filter(recipient=bob).order_by("pk"))


def test_my_notifications_newest_first(client_for, bob, bobs) -> None:
    body = client_for(bob).get("/v1/notifications").json()
    assert [n["id"] for n in body["results"]] == [n.pk for n in reversed(bobs)]
    first = body["results"][-1]
    assert first["kind"] == "assigned" and first["read_at"] is None
    assert first["ticket"] == bobs[0].ticket.number


def test_mark_read_and_read_all(client_for, bob, bobs) -> None:
    client = client_for(bob)
    read = client.post(f"/v1/notifications/{bobs[0].pk}/read")
    assert read.status_code == 200 and read.json()["read_at"]
    assert client.get("/v1/notifications/unread-count").json() == {"count": 2}
    assert [n["id"] for n in client.get("/v1/notifications?unread=true").json()["results"]] == [
        bobs[2].pk,
        bobs[1].pk,
    ]
    assert client.post("/v1/notifications/read-all").json() == {"count": 2}
    assert client.get("/v1/notifications/unread-count").json() == {"count": 0}


def test_another_agents_notification_is_a_404(client_for, alice, bob, bobs) -> None:
    assert client_for(alice).post(f"/v1/notifications/{bobs[0].pk}/read").status_code == 404
    assert client_for(alice).get(f"/v1/notifications/{bobs[0].pk}").status_code == 404
    mine = client_for(alice).get("/v1/notifications").json()["results"]
    assert all(n["id"] not in {b.pk for b in bobs} for n in mine)


def test_charlie_gets_404(client_for, charlie, bobs) -> None:
    client = client_for(charlie)
    assert client.get(f"/v1/notifications/{bobs[0].pk}").status_code == 404
    assert client.post(f"/v1/notifications/{bobs[0].pk}/read").status_code == 404
    assert client.get("/v1/notifications").json()["results"] == []
    bobs[0].refresh_from_db()
    assert bobs[0].read_at is None


def test_a_light_agent_reads_and_marks_their_own(client_for, workspace_a) -> None:
    lena = light_agent(workspace_a)
    client = client_for(lena)
    assert client.get("/v1/notifications").status_code == 200
    assert client.post("/v1/notifications/read-all").status_code == 200
    assert (
        client.patch(
            "/v1/notification-preferences", {"preferences": [{"kind": "mentioned", "email": False}]}
        ).status_code
        == 200
    )


def test_the_list_costs_the_same_for_one_or_many(client_for, bob, customer_a, alice) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(bob)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/v1/notifications").status_code == 200
        return len(captured)

    ticket = write_in(customer_a)
    notifications.notify(recipients=[bob], kind="assigned", ticket=ticket, message="one")
    one = count()
    for i in range(6):
        notifications.notify(recipients=[bob], kind="assigned", ticket=ticket, message=f"n{i}")
    # The agent's token check, then one query for the page of notifications.
    assert count() == one


def test_preferences_over_the_api(client_for, bob) -> None:
    client = client_for(bob)
    before = client.get("/v1/notification-preferences").json()["preferences"]
    assert {"kind": "assigned", "in_app": True, "email": True} in before
    assert {"kind": "daily_digest", "in_app": False, "email": True} in before

    changed = client.patch(
        "/v1/notification-preferences",
        {
            "preferences": [
                {"kind": "assigned", "email": False},
                {"kind": "mentioned", "in_app": False},
            ]
        },
    )

    assert changed.status_code == 200, changed.content
    prefs = {p["kind"]: p for p in changed.json()["preferences"]}
    assert prefs["assigned"] == {"kind": "assigned", "in_app": True, "email": False}
    assert prefs["mentioned"] == {"kind": "mentioned", "in_app": False, "email": True}
    bad = client.patch("/v1/notification-preferences", {"preferences": [{"kind": "spam"}]})
    assert bad.status_code == 400 and "preferences.0.kind" in error(bad)["fields"]


def test_preferences_are_per_agent(client_for, alice, bob) -> None:
    client_for(bob).patch(
        "/v1/notification-preferences", {"preferences": [{"kind": "assigned", "email": False}]}
    )
    prefs = client_for(alice).get("/v1/notification-preferences").json()["preferences"]
    assert {"kind": "assigned", "in_app": True, "email": True} in prefs
