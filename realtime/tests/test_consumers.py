"""The realtime websocket, through channels' WebsocketCommunicator: authentication, the
protocol, tenant isolation, events after commit, limits and heartbeat."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import transaction
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from enque.api.authentication import issue_tokens, revoke_refresh
from realtime.tests.conftest import access_token, async_test, atoken, open_socket
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import comment_create, ticket_assign, ticket_create
from workspaces.models import Agent, Customer, Workspace

pytestmark = pytest.mark.django_db(transaction=True)


def api_reply(agent: Agent, number: int, **body: Any) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(agent)}")
    response = client.post(f"/v1/tickets/{number}/reply", {"body": "On it.", **body}, "json")
    return response.status_code


# --- Events reach their workspace, and only it ------------------------------------------


@async_test
async def test_a_reply_through_the_api_reaches_the_workspace_and_not_charlie(
    alice: Agent, bob: Agent, charlie: Agent, ticket_a: Ticket, ticket_b: Ticket
) -> None:
    tokens = {a.pk: await atoken(a) for a in (alice, charlie)}
    alice_ws, welcome = await open_socket(tokens[alice.pk])
    charlie_ws, _ = await open_socket(tokens[charlie.pk])
    try:
        assert welcome["payload"] == {
            "agent": alice.pk,
            "workspace": alice.workspace_id,
            "max_message_bytes": 4096,
            "idle_timeout": 120.0,
        }
        assert (await alice_ws.subscribe("tickets"))["type"] == "subscribed"
        # The same number in Charlie's own workspace: his ticket #1, not Acme's.
        assert ticket_b.number == ticket_a.number
        for channel in ("tickets", f"ticket:{ticket_b.number}"):
            assert (await charlie_ws.subscribe(channel))["type"] == "subscribed"
        await charlie_ws.receive_type("presence.changed")  # the (empty) snapshot

        status = await database_sync_to_async(api_reply)(bob, ticket_a.number)

        assert status == 201
        event = await alice_ws.receive_type("comment.created")
        assert event["workspace"] == alice.workspace_id
        assert event["ticket"] == ticket_a.number
        assert event["actor"]["agent"] == bob.pk
        assert event["data"]["internal"] is False
        assert event["data"]["author_type"] == "agent"
        assert set(event) == {"type", "id", "workspace", "ticket", "actor", "data", "at"}
        # The reply opened the new ticket: a second event says so.
        updated = await alice_ws.receive_type("ticket.updated")
        assert updated["data"]["changes"]["status"] == {"old": "new", "new": "open"}
        assert await charlie_ws.nothing()
    finally:
        await alice_ws.close()
        await charlie_ws.close()


@async_test
async def test_an_event_reaches_a_socket_once_through_two_subscriptions(
    alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    socket, _ = await open_socket(await atoken(alice))
    try:
        await socket.subscribe("tickets")
        await socket.subscribe(f"ticket:{ticket_a.number}")
        await socket.receive_type("presence.changed")

        await database_sync_to_async(comment_create)(
            ticket=ticket_a, actor=Actor.for_agent(bob), body_text="A note", internal=True
        )

        event = await socket.receive()
        assert (event["type"], event["data"]["internal"]) == ("comment.created", True)
        assert await socket.nothing()
    finally:
        await socket.close()


@async_test
async def test_an_assignment_reaches_the_new_assignee_on_agent_me(
    alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    bob_ws, _ = await open_socket(await atoken(bob))
    alice_ws, _ = await open_socket(await atoken(alice))
    try:
        await bob_ws.subscribe("agent:me")
        await alice_ws.subscribe("agent:me")

        await database_sync_to_async(ticket_assign)(
            ticket=ticket_a, actor=Actor.for_agent(alice), assignee=bob
        )

        event = await bob_ws.receive()
        assert event["type"] == "ticket.assigned"
        assert event["data"] == {"assignee": bob.pk, "previous": None}
        assert await alice_ws.nothing()
    finally:
        await bob_ws.close()
        await alice_ws.close()


@async_test
async def test_a_new_ticket_reaches_the_ticket_list(
    alice: Agent, customer_a: Customer, workspace_a: Workspace
) -> None:
    socket, _ = await open_socket(await atoken(alice))
    try:
        await socket.subscribe("tickets")

        ticket = await database_sync_to_async(ticket_create)(
            workspace=workspace_a,
            actor=Actor.for_customer(customer_a),
            subject="Paper jam",
            body_text="Again.",
            customer=customer_a,
            channel="email",
        )

        event = await socket.receive()
        assert (event["type"], event["ticket"]) == ("ticket.created", ticket.number)
    finally:
        await socket.close()


@async_test
async def test_nothing_is_published_for_a_transaction_that_rolls_back(
    alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    socket, _ = await open_socket(await atoken(alice))

    def reply_then_fail() -> None:
        with transaction.atomic():
            comment_create(ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Lost reply")
            raise RuntimeError("the request failed after the reply was written")

    try:
        await socket.subscribe("tickets")
        with pytest.raises(RuntimeError):
            await database_sync_to_async(reply_then_fail)()
        assert await socket.nothing(0.5)

        # A change that commits is published: the socket was listening all along.
        comment = await database_sync_to_async(comment_create)(
            ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Kept reply"
        )
        event = await socket.receive()
        assert (event["type"], event["data"]["comment"]) == ("comment.created", comment.pk)
    finally:
        await socket.close()


# --- The handshake --------------------------------------------------------------------


def expired_token(agent: Agent) -> str:
    token = AccessToken.for_user(agent.user)
    token["workspace_id"] = agent.workspace_id
    token["agent_id"] = agent.pk
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))
    return str(token)


def forged_token(agent: Agent) -> str:
    import jwt

    claims = AccessToken(access_token(agent)).payload
    return jwt.encode(claims, "not-our-secret-not-our-secret-not-ours", algorithm="HS256")


def logged_out_access_token(agent: Agent) -> str:
    tokens = issue_tokens(agent)
    revoke_refresh(tokens["refresh"])
    return tokens["access"]


def logged_out_refresh_token(agent: Agent) -> str:
    refresh = issue_tokens(agent)["refresh"]
    revoke_refresh(refresh)
    return refresh


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda agent: None, id="missing"),
        pytest.param(lambda agent: "not-a-jwt", id="garbage"),
        pytest.param(expired_token, id="expired"),
        pytest.param(forged_token, id="wrong-signature"),
        # Only access tokens open sockets; a refresh token (here one revoked by logout) is
        # refused like any other wrong token.
        pytest.param(logged_out_refresh_token, id="logged-out-refresh"),
        # Logout revokes the session, so its still-unexpired access token is refused too.
        pytest.param(logged_out_access_token, id="logged-out-access"),
        pytest.param(lambda agent: issue_tokens(agent)["refresh"], id="refresh"),
        pytest.param(lambda agent: "x" * 5000, id="oversized"),
    ],
)
@async_test
async def test_the_handshake_is_refused_with_4401(alice: Agent, make_token: Any) -> None:
    token = await database_sync_to_async(make_token)(alice)

    socket, answer = await open_socket(token)

    assert answer == 4401
    await socket.close()


@async_test
async def test_a_deactivated_agent_is_refused(bob: Agent) -> None:
    token = await atoken(bob)
    await database_sync_to_async(Agent.objects.filter(pk=bob.pk).update)(is_active=False)

    socket, answer = await open_socket(token)

    assert answer == 4401
    await socket.close()


@async_test
async def test_a_deactivated_workspace_is_refused(alice: Agent, workspace_a: Workspace) -> None:
    token = await atoken(alice)
    await database_sync_to_async(Workspace.objects.filter(pk=workspace_a.pk).update)(
        is_active=False
    )

    socket, answer = await open_socket(token)

    assert answer == 4401
    await socket.close()


@async_test
async def test_agent_and_workspace_parameters_are_ignored(
    alice: Agent, charlie: Agent, workspace_a: Workspace
) -> None:
    spoof = f"agentId={alice.pk}&workspaceId={workspace_a.pk}"

    anonymous, refused = await open_socket(query=spoof)
    socket, welcome = await open_socket(await atoken(charlie), query=spoof)

    assert refused == 4401
    assert welcome["payload"]["agent"] == charlie.pk
    assert welcome["payload"]["workspace"] == charlie.workspace_id
    await anonymous.close()
    await socket.close()


@async_test
async def test_a_bearer_header_and_the_ws_path_work_too(alice: Agent) -> None:
    header = (b"authorization", f"Bearer {await atoken(alice)}".encode())

    socket, welcome = await open_socket(path="/ws/realtime", headers=[header])

    assert welcome["type"] == "welcome"
    await socket.close()


@async_test
async def test_another_path_is_refused(alice: Agent) -> None:
    socket, answer = await open_socket(await atoken(alice), path="/realtime/other")

    assert answer == 1000  # closed before the handshake completed (HTTP 403)
    await socket.close()


# --- The session cookie (agent UI) --------------------------------------------------------


def session_cookie(agent: Agent, *, workspace_id: int | None = None) -> tuple[Client, bytes]:
    client = Client()
    client.force_login(agent.user)
    session = client.session
    session["workspace_id"] = workspace_id or agent.workspace_id
    session.save()
    return client, f"sessionid={client.cookies['sessionid'].value}".encode()


def cookie_headers(cookie: bytes, origin: bytes | None = b"http://testserver") -> list[Any]:
    return [(b"cookie", cookie), *([(b"origin", origin)] if origin else [])]


@async_test
async def test_a_session_cookie_from_our_origin_opens_a_socket(alice: Agent) -> None:
    _, cookie = await database_sync_to_async(session_cookie)(alice)

    socket, welcome = await open_socket(headers=cookie_headers(cookie))

    assert welcome["payload"]["agent"] == alice.pk
    await socket.close()


@pytest.mark.parametrize(
    "origin",
    [pytest.param(b"https://evil.example", id="foreign"), pytest.param(None, id="none")],
)
@async_test
async def test_a_session_cookie_from_elsewhere_is_refused(
    alice: Agent, origin: bytes | None
) -> None:
    # Cross-site websocket hijacking: another site's page opening a socket with our cookie.
    _, cookie = await database_sync_to_async(session_cookie)(alice)

    socket, answer = await open_socket(headers=cookie_headers(cookie, origin))

    assert answer == 4401
    await socket.close()


@async_test
async def test_a_logged_out_session_is_refused(alice: Agent) -> None:
    client, cookie = await database_sync_to_async(session_cookie)(alice)
    await database_sync_to_async(client.logout)()

    socket, answer = await open_socket(headers=cookie_headers(cookie))

    assert answer == 4401
    await socket.close()


@async_test
async def test_a_session_for_a_workspace_the_user_is_not_in_is_refused(
    charlie: Agent, workspace_a: Workspace
) -> None:
    _, cookie = await database_sync_to_async(session_cookie)(charlie, workspace_id=workspace_a.pk)

    socket, answer = await open_socket(headers=cookie_headers(cookie))

    assert answer == 4401
    await socket.close()


# --- Subscriptions and malformed frames ---------------------------------------------------


@async_test
async def test_charlie_cannot_subscribe_to_a_ticket_of_another_workspace(
    alice: Agent, charlie: Agent, ticket_a: Ticket, ticket_b: Ticket, customer_a: Customer
) -> None:
    second = await database_sync_to_async(ticket_create)(
        workspace=ticket_a.workspace,
        actor=Actor.for_customer(customer_a),
        subject="Only Acme has a #2",
        body_text="...",
        customer=customer_a,
        channel="email",
    )
    socket, _ = await open_socket(await atoken(charlie))
    try:
        await socket.send({"type": "subscribe", "payload": {"channel": f"ticket:{second.number}"}})
        error = await socket.receive()

        assert error == {
            "type": "error",
            "payload": {"code": "not_found", "message": "Ticket not found."},
        }
        # Not subscribed: Acme's changes to #2 never arrive.
        await database_sync_to_async(comment_create)(
            ticket=second, actor=Actor.for_agent(alice), body_text="Hello"
        )
        assert await socket.nothing()
    finally:
        await socket.close()


MALFORMED = [
    ("{not json", "invalid_json"),
    ("[1, 2]", "invalid_message"),
    ('"ping"', "invalid_message"),
    ('{"payload": {}}', "invalid_message"),
    ('{"type": 7}', "invalid_message"),
    ('{"type": "shutdown"}', "unknown_type"),
    ('{"type": "subscribe", "payload": []}', "invalid_payload"),
    ('{"type": "subscribe"}', "invalid_payload"),
    ('{"type": "subscribe", "payload": {"channel": 12}}', "invalid_payload"),
    ('{"type": "subscribe", "payload": {"channel": "everything"}}', "unknown_channel"),
    ('{"type": "subscribe", "payload": {"channel": "ticket:0"}}', "unknown_channel"),
    ('{"type": "subscribe", "payload": {"channel": "ticket:1.5"}}', "unknown_channel"),
    ('{"type": "subscribe", "payload": {"channel": "ticket:99999999999"}}', "unknown_channel"),
    ('{"type": "subscribe", "payload": {"channel": "ticket:404"}}', "not_found"),
    ('{"type": "subscribe", "payload": {"channel": "agent:12"}}', "unknown_channel"),
    ('{"type": "unsubscribe", "payload": {"channel": "ws.1.tickets"}}', "unknown_channel"),
    ('{"type": "presence", "payload": {"ticket": "1", "state": "viewing"}}', "invalid_payload"),
    ('{"type": "presence", "payload": {"ticket": true, "state": "viewing"}}', "invalid_payload"),
    ('{"type": "presence", "payload": {"ticket": 1, "state": "dancing"}}', "invalid_payload"),
    ('{"type": "presence", "payload": {"ticket": 404, "state": "viewing"}}', "not_found"),
    ("[" * 2000 + "]" * 2000, "invalid_json"),  # deeper than the JSON parser recurses
    ('{"type": "ping", "pad": "' + "x" * 5000 + '"}', "message_too_large"),
]


@override_settings(REALTIME_MESSAGE_BURST=100)
@async_test
async def test_malformed_frames_get_error_frames_and_subscribe_nothing(
    alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    socket, _ = await open_socket(await atoken(alice))
    try:
        for text, code in MALFORMED:
            await socket.send_raw(text)
            frame = await socket.receive()
            assert frame["type"] == "error", text[:60]
            assert frame["payload"]["code"] == code, text[:60]
            assert frame["payload"]["message"]
        await socket.send_raw(data=b"\x00\x01")
        assert (await socket.receive())["payload"]["code"] == "unsupported_frame"

        await database_sync_to_async(comment_create)(
            ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Anyone?"
        )
        assert await socket.nothing()
        await socket.send({"type": "ping"})
        assert await socket.receive() == {"type": "pong"}
    finally:
        await socket.close()


@async_test
async def test_ping_pong_and_replies_echo_the_message_id(alice: Agent) -> None:
    socket, _ = await open_socket(await atoken(alice))
    try:
        await socket.send({"type": "ping", "id": "p1"})
        assert await socket.receive() == {"type": "pong", "ref": "p1"}

        await socket.send({"type": "subscribe", "id": 7, "payload": {"channel": "tickets"}})
        assert await socket.receive() == {
            "type": "subscribed",
            "payload": {"channel": "tickets"},
            "ref": 7,
        }
        await socket.send({"type": "subscribe", "id": 8, "payload": {"channel": "nope"}})
        assert (await socket.receive())["ref"] == 8
    finally:
        await socket.close()


@async_test
async def test_unsubscribe_stops_the_events(alice: Agent, bob: Agent, ticket_a: Ticket) -> None:
    socket, _ = await open_socket(await atoken(alice))
    try:
        await socket.subscribe("tickets")
        await socket.send({"type": "unsubscribe", "payload": {"channel": "tickets"}})
        assert await socket.receive() == {
            "type": "unsubscribed",
            "payload": {"channel": "tickets"},
        }

        await database_sync_to_async(comment_create)(
            ticket=ticket_a, actor=Actor.for_agent(bob), body_text="Anyone?"
        )
        assert await socket.nothing()
    finally:
        await socket.close()


@override_settings(REALTIME_MAX_TICKET_SUBSCRIPTIONS=1)
@async_test
async def test_ticket_subscriptions_are_capped(
    alice: Agent, ticket_a: Ticket, customer_a: Customer
) -> None:
    second = await database_sync_to_async(ticket_create)(
        workspace=ticket_a.workspace,
        actor=Actor.for_customer(customer_a),
        subject="Second",
        body_text="...",
        customer=customer_a,
        channel="email",
    )
    socket, _ = await open_socket(await atoken(alice))
    try:
        await socket.subscribe(f"ticket:{ticket_a.number}")
        await socket.receive_type("presence.changed")
        frame = await socket.subscribe(f"ticket:{second.number}")
        assert frame["payload"]["code"] == "too_many_subscriptions"
    finally:
        await socket.close()


# --- Limits and heartbeat --------------------------------------------------------------


@async_test
async def test_a_burst_past_the_rate_limit_gets_error_frames(alice: Agent) -> None:
    socket, _ = await open_socket(await atoken(alice))
    try:
        for _ in range(25):
            await socket.send({"type": "ping"})
        frames = [await socket.receive() for _ in range(25)]

        assert [f["type"] for f in frames].count("pong") >= 20
        limited = [f for f in frames if f["type"] == "error"]
        assert limited
        assert {f["payload"]["code"] for f in limited} == {"rate_limited"}
    finally:
        await socket.close()


@override_settings(REALTIME_ABUSE_STRIKES=10)
@async_test
async def test_persistent_flooding_closes_the_socket_with_4429(alice: Agent) -> None:
    socket, _ = await open_socket(await atoken(alice))
    try:
        for _ in range(40):
            await socket.send({"type": "ping"})

        assert await socket.closed_with() == 4429
    finally:
        await socket.close()


@override_settings(REALTIME_HARD_MAX_MESSAGE_BYTES=8192)
@async_test
async def test_a_huge_frame_closes_the_socket_with_1009(alice: Agent) -> None:
    socket, _ = await open_socket(await atoken(alice))
    try:
        await socket.send_raw("x" * 10_000)

        assert await socket.closed_with() == 1009
    finally:
        await socket.close()


@override_settings(REALTIME_HEARTBEAT_INTERVAL=0.05, REALTIME_IDLE_TIMEOUT=0.3)
@async_test
async def test_an_idle_socket_is_closed_and_pings_keep_it_open(alice: Agent) -> None:
    quiet, _ = await open_socket(await atoken(alice))
    chatty, _ = await open_socket(await atoken(alice))
    try:
        for _ in range(6):
            await chatty.send({"type": "ping"})
            assert (await chatty.receive())["type"] == "pong"
            await chatty.nothing(0.1)

        assert await quiet.closed_with() == 4408
    finally:
        await quiet.close()
        await chatty.close()


@override_settings(REALTIME_HEARTBEAT_INTERVAL=0.05, REALTIME_REVALIDATE_INTERVAL=0)
@async_test
async def test_an_open_socket_closes_when_its_agent_is_deactivated(bob: Agent) -> None:
    socket, _ = await open_socket(await atoken(bob))
    try:
        await socket.send({"type": "ping"})
        assert (await socket.receive())["type"] == "pong"

        await database_sync_to_async(Agent.objects.filter(pk=bob.pk).update)(is_active=False)

        assert await socket.closed_with() == 4401
    finally:
        await socket.close()


@override_settings(REALTIME_HEARTBEAT_INTERVAL=0.05, REALTIME_REVALIDATE_INTERVAL=0)
@async_test
async def test_an_open_session_socket_closes_when_the_session_signs_out(alice: Agent) -> None:
    client, cookie = await database_sync_to_async(session_cookie)(alice)
    socket, welcome = await open_socket(headers=cookie_headers(cookie))
    try:
        assert welcome["type"] == "welcome"

        await database_sync_to_async(client.logout)()

        assert await socket.closed_with() == 4401
    finally:
        await socket.close()


@override_settings(REALTIME_HEARTBEAT_INTERVAL=0.05)
@async_test
async def test_an_open_socket_closes_when_its_token_expires(alice: Agent) -> None:
    def short_lived() -> str:
        token = AccessToken.for_user(alice.user)
        token["workspace_id"] = alice.workspace_id
        token["agent_id"] = alice.pk
        # Long enough for the handshake on a loaded CI machine, short enough to wait out.
        token.set_exp(lifetime=timedelta(seconds=4))
        return str(token)

    socket, welcome = await open_socket(await database_sync_to_async(short_lived)())
    try:
        assert welcome["type"] == "welcome"

        assert await socket.closed_with(timeout=15) == 4401
    finally:
        await socket.close()
