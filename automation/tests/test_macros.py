"""Macros: previewed without changing anything, applied in one step as one history entry;
shared ones are the admins', personal ones their owner's alone."""

from __future__ import annotations

import pytest

from automation import services
from automation.models import Macro
from automation.tests.support import team_with, write_in
from enque.errors import Forbidden, InvalidInput, NotFound
from enque.tests.factories import CannedReplyFactory
from tickets.models import Comment, TicketEvent, TicketEventKind
from tickets.tests.api_support import error, light_agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def canned(workspace_a):
    return CannedReplyFactory(
        workspace=workspace_a,
        title="Need details",
        body="Hi {{customer.first_name}}, could you send a photo? — {{agent.name}}",
    )


@pytest.fixture
def macro(alice, workspace_a, canned):
    team = team_with(workspace_a, alice, name="Hardware")
    return services.macro_create(
        workspace=workspace_a,
        actor=alice,
        name="Ask for a photo",
        canned_reply=canned,
        shared=True,
        actions=[
            {"action_type": "set_status", "params": {"status": "pending"}},
            {"action_type": "set_team", "params": {"team_id": team.pk}},
            {"action_type": "set_assignee", "params": {"agent_id": "me"}},
            {"action_type": "add_tags", "params": {"tags": ["needs-photo"]}},
            {"action_type": "add_note", "params": {"body": "Asked {{customer.name}} for a photo"}},
        ],
    )


def test_the_preview_shows_every_change_and_changes_nothing(
    macro, bob, workspace_a, customer_a
) -> None:
    ticket = write_in(customer_a)
    before = TicketEvent.objects.count(), Comment.objects.count()

    preview = services.macro_preview(workspace=workspace_a, actor=bob, macro=macro, ticket=ticket)

    assert preview["changes"] == {
        "status": {"old": "new", "new": "pending"},
        "team": {"old": None, "new": macro.actions[1]["params"]["team_id"]},
        "assignee": {"old": None, "new": bob.pk},
        "tags": {"old": [], "new": ["needs-photo"]},
    }
    assert preview["notes"] == ["Asked Carol Customer for a photo"]
    assert preview["reply"]["body"] == "Hi Carol, could you send a photo? — Bob Agent"
    assert (TicketEvent.objects.count(), Comment.objects.count()) == before
    ticket.refresh_from_db()
    assert ticket.status == "new"


def test_applying_makes_every_change_in_one_history_entry(
    macro, bob, workspace_a, customer_a, canned, hooks_run
) -> None:
    ticket = write_in(customer_a)
    history_before = list(TicketEvent.objects.filter(ticket=ticket).values_list("pk", flat=True))

    with hooks_run():
        result = services.macro_apply(workspace=workspace_a, actor=bob, macro=macro, ticket=ticket)

    ticket.refresh_from_db()
    assert ticket.status == "pending" and ticket.assignee == bob
    assert ticket.team_id == macro.actions[1]["params"]["team_id"]
    assert list(ticket.tags.values_list("name", flat=True)) == ["needs-photo"]
    note, reply = Comment.objects.filter(ticket=ticket).order_by("pk")[1:]
    assert note.is_internal and note.body_text == "Asked Carol Customer for a photo"
    assert not reply.is_internal and reply.author_agent == bob
    assert reply.body_text.startswith("Hi Carol, could you send a photo?")
    new_history = TicketEvent.objects.filter(ticket=ticket).exclude(pk__in=history_before)
    assert new_history.count() == 1
    entry = new_history.get()
    assert entry.kind == TicketEventKind.MACRO_APPLIED and entry.actor_agent == bob
    assert entry.pk == result["event"]
    assert entry.data["macro"] == macro.pk
    assert entry.data["changes"]["status"] == {"old": "new", "new": "pending"}
    assert entry.data["changes"]["assignee"] == {"old": None, "new": bob.pk}
    assert entry.data["changes"]["tags"] == {"old": [], "new": ["needs-photo"]}
    assert entry.data["comments"] == [note.pk, reply.pk]
    macro.refresh_from_db()
    canned.refresh_from_db()
    assert macro.usage_count == 1 and canned.usage_count == 1
    # The reply still counts as the first response, as any agent's reply does.
    assert ticket.first_response_at is not None


def test_applying_runs_the_automations_and_notifications_of_the_changes(
    macro, alice, bob, workspace_a, customer_a, rule, hooks_run
) -> None:
    rule(
        "ticket_updated",
        conditions=[("status", "is", "pending")],
        actions=[("add_tags", {"tags": ["waiting"]})],
    )
    ticket = write_in(customer_a)

    with hooks_run():
        services.macro_apply(workspace=workspace_a, actor=bob, macro=macro, ticket=ticket)

    assert "waiting" in set(ticket.tags.values_list("name", flat=True))


def test_a_macro_only_of_a_reply(alice, bob, workspace_a, customer_a, canned) -> None:
    macro = services.macro_create(
        workspace=workspace_a, actor=bob, name="Photo please", canned_reply=canned
    )
    ticket = write_in(customer_a)
    services.macro_apply(workspace=workspace_a, actor=bob, macro=macro, ticket=ticket)
    kinds = list(TicketEvent.objects.filter(ticket=ticket).values_list("kind", flat=True))
    assert kinds == ["created", "macro_applied"]


def test_shared_macros_are_the_admins(bob, workspace_a, canned) -> None:
    with pytest.raises(Forbidden):
        services.macro_create(
            workspace=workspace_a, actor=bob, name="X", canned_reply=canned, shared=True
        )


def test_a_personal_macro_is_its_owners_alone(alice, bob, workspace_a, canned, customer_a) -> None:
    mine = services.macro_create(workspace=workspace_a, actor=bob, name="Mine", canned_reply=canned)
    ticket = write_in(customer_a)
    for call in (
        lambda: services.macro_apply(workspace=workspace_a, actor=alice, macro=mine, ticket=ticket),
        lambda: services.macro_update(workspace=workspace_a, actor=alice, macro=mine, name="Y"),
        lambda: services.macro_delete(workspace=workspace_a, actor=alice, macro=mine),
    ):
        with pytest.raises(NotFound):
            call()


def test_a_macro_cannot_call_webhooks_or_assign_round_robin(alice, workspace_a) -> None:
    for action_type, params in (
        ("call_webhook", {"url": "https://example.com"}),
        ("assign_round_robin", {"team_id": 1}),
        ("send_canned_reply", {"canned_reply_id": 1}),
    ):
        with pytest.raises(InvalidInput) as caught:
            services.macro_create(
                workspace=workspace_a,
                actor=alice,
                name="Bad",
                actions=[{"action_type": action_type, "params": params}],
            )
        assert caught.value.field == "actions.0.action_type"


def test_macro_names_are_unique_per_owner(alice, bob, workspace_a, canned) -> None:
    from enque.errors import Conflict

    services.macro_create(workspace=workspace_a, actor=bob, name="Photo", canned_reply=canned)
    services.macro_create(workspace=workspace_a, actor=alice, name="photo", canned_reply=canned)
    with pytest.raises(Conflict):
        services.macro_create(workspace=workspace_a, actor=bob, name="PHOTO", canned_reply=canned)


# --- API --------------------------------------------------------------------------------------


def test_list_preview_and_apply_over_the_api(
    client_for, macro, bob, workspace_a, customer_a, canned
) -> None:
    services.macro_create(workspace=workspace_a, actor=bob, name="Bob's own", canned_reply=canned)
    ticket = write_in(customer_a)
    client = client_for(bob)

    listed = client.get("/v1/macros").json()["results"]
    preview = client.post(f"/v1/macros/{macro.pk}/preview", {"ticket": ticket.number})
    applied = client.post(f"/v1/macros/{macro.pk}/apply", {"ticket": ticket.number})

    assert [m["name"] for m in listed] == ["Ask for a photo", "Bob's own"]
    assert listed[0]["shared"] is True and listed[0]["canned_reply"]["id"] == canned.pk
    assert preview.status_code == 200 and preview.json()["changes"]["status"]["new"] == "pending"
    assert applied.status_code == 200, applied.content
    assert applied.json()["event"] == TicketEvent.objects.get(kind="macro_applied").pk


def test_creating_over_the_api_validates_the_actions(client_for, bob, canned) -> None:
    response = client_for(bob).post(
        "/v1/macros",
        {
            "name": "Bad",
            "canned_reply_id": canned.pk,
            "actions": [
                {"action_type": "set_status", "params": {"status": "open"}},
                {"action_type": "set_priority", "params": {"priority": "whenever"}},
            ],
        },
    )
    assert response.status_code == 400
    assert "actions.1.params.priority" in error(response)["fields"]


def test_a_light_agent_may_preview_but_not_apply(client_for, macro, workspace_a, customer_a):
    lena = light_agent(workspace_a)
    ticket = write_in(customer_a)
    client = client_for(lena)
    assert (
        client.post(f"/v1/macros/{macro.pk}/preview", {"ticket": ticket.number}).status_code == 200
    )
    refused = client.post(f"/v1/macros/{macro.pk}/apply", {"ticket": ticket.number})
    assert refused.status_code == 403 and error(refused)["code"] == "light_agent"


def test_another_agents_personal_macro_is_a_404(client_for, alice, bob, workspace_a, canned):
    mine = services.macro_create(workspace=workspace_a, actor=bob, name="Mine", canned_reply=canned)
    assert client_for(alice).get(f"/v1/macros/{mine.pk}").status_code == 404


def test_charlie_gets_404(client_for, charlie, macro, customer_a) -> None:
    ticket = write_in(customer_a)
    client = client_for(charlie)
    assert client.get(f"/v1/macros/{macro.pk}").status_code == 404
    assert client.post(f"/v1/macros/{macro.pk}/apply", {"ticket": ticket.number}).status_code == 404
    assert client.get("/v1/macros").json()["results"] == []
    assert Macro.objects.get(pk=macro.pk).usage_count == 0
