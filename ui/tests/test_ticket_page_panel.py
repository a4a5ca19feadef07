"""The ticket page's pickers and canned replies come from the cache (ui/panel.py): the page
costs fewer queries, yet shows every change on the next load and never another
workspace's lists."""

from __future__ import annotations

import html as html_lib
import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from redis.exceptions import ConnectionError as RedisConnectionError

from enque import cache_versions
from enque.tests.factories import AgentFactory, TeamFactory, UserFactory
from enque.tests.test_query_counts import comments
from tickets import services as ticket_services
from tickets.actors import Actor
from tickets.models import CannedReply, Category, Tag, Ticket
from ui import panel
from ui.views.common import Lookups
from workspaces import services as workspace_services
from workspaces.models import Agent, AgentRole, Team, Workspace

pytestmark = pytest.mark.django_db


def page(client: Client, ticket: Ticket) -> str:
    response = client.get(reverse("ui:ticket", args=[ticket.number]))
    assert response.status_code == 200
    return response.content.decode()


def page_queries(client: Client, ticket: Ticket) -> int:
    with CaptureQueriesContext(connection) as captured:
        page(client, ticket)
    return len(captured)


def picker(html: str, name: str) -> list[str]:
    """The labels of the side panel's <select> for ``name`` (assignee, team, category)."""
    match = re.search(rf'<select id="prop-{name}".*?</select>', html, re.S)
    assert match, name
    return [html_lib.unescape(label) for label in re.findall(r">([^<]*)</option>", match[0])]


def tag_choices(html: str) -> list[str]:
    match = re.search(r'<datalist id="all-tags">(.*?)</datalist>', html, re.S)
    assert match
    return [html_lib.unescape(v) for v in re.findall(r'<option value="([^"]*)">', match[1])]


def canned_titles(html: str) -> list[str]:
    return [html_lib.unescape(t) for t in re.findall(r"<strong>([^<]*)</strong>", _canned(html))]


def _canned(html: str) -> str:
    match = re.search(r'<ul class="canned-list">(.*?)</ul>', html, re.S)
    return match[1] if match else ""


# --- Queries -------------------------------------------------------------------------------


def test_the_lists_cost_no_query_once_cached(
    alice_client: Client, alice: Agent, ticket_a: Ticket
) -> None:
    comments(ticket_a, 50)
    ticket_services.canned_reply_create(
        workspace=ticket_a.workspace, actor=alice, title="Thanks", body="Thank you!", shared=True
    )
    # Cold: 1 session, 2 user, 3 membership, 4 the ticket (embedded objects, body, counts,
    # pending scheduled replies, the customer's ticket count), 5 its tags, 6 the comments
    # with authors, 7 their attachments, 8 the history with actors, 9 agents, teams,
    # categories and tags (one UNION ALL), 10 canned replies, 11 the workspace switcher.
    # (The customer has no other ticket and nothing is scheduled: no query for either.)
    assert page_queries(alice_client, ticket_a) == 11
    # Warm: the same without 9 and 10.
    assert page_queries(alice_client, ticket_a) == 9


def test_other_tickets_and_scheduled_replies_still_show(
    alice_client: Client, alice: Agent, ticket_a: Ticket
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    customer = ticket_a.customer
    page(alice_client, ticket_a)
    alone = page_queries(alice_client, ticket_a)
    html = page(alice_client, ticket_a)
    assert "This is their only ticket." in html
    assert "Scheduled" not in html
    for i in range(7):
        ticket_services.ticket_create(
            workspace=ticket_a.workspace,
            actor=Actor.for_customer(customer),
            subject=f"Also {i}",
            body_text="x",
            customer=customer,
        )
    ticket_services.comment_schedule(
        ticket=ticket_a,
        actor=Actor.for_agent(alice),
        send_at=timezone.now() + timedelta(days=1),
        body_text="Later on",
    )
    # + the other tickets, + the scheduled replies (their attachments counted in the same
    # query).
    assert page_queries(alice_client, ticket_a) == alone + 2
    html = page(alice_client, ticket_a)
    assert 'Other tickets <span class="count">7</span>' in html
    assert "All 8 tickets" in html
    assert html.count('class="mini-tickets"') == 1 and html.count("Also ") == 5
    assert "Later on" in html


def test_the_lists_are_those_of_the_database(
    alice_client: Client, workspace_a: Workspace, alice: Agent
) -> None:
    # Mixed case (the database's collation orders them), names that fall back (display
    # name, else user name, else email), a deactivated agent.
    for name in ("beta", "Alpha", "alpha two", "Zed"):
        TeamFactory(workspace=workspace_a, name=name)
        Category.objects.create(workspace=workspace_a, name=f"{name} cat")
        Tag.objects.create(workspace=workspace_a, name=f"{name}-tag")
    AgentFactory(workspace=workspace_a, user=UserFactory(name="", email="nameless@a.test"))
    AgentFactory(workspace=workspace_a, display_name="Desk Name", user=UserFactory(name="X"))
    AgentFactory(workspace=workspace_a, user=UserFactory(name="gone"), is_active=False)
    lookups = Lookups(SimpleNamespace(workspace=workspace_a))  # type: ignore[arg-type]
    options = panel.read_panel_options(workspace_a.pk)
    assert [(a.pk, a.name, a.is_active) for a in options.agents] == [
        (a.pk, a.name, a.is_active) for a in lookups.agents
    ]
    assert [(o.pk, o.name) for o in options.teams] == [(o.pk, o.name) for o in lookups.teams]
    assert [(o.pk, o.name) for o in options.categories] == [
        (o.pk, o.name) for o in lookups.categories
    ]
    assert [(o.pk, o.name) for o in options.tags] == [(o.pk, o.name) for o in lookups.tags]
    assert "nameless@a.test" in [a.name for a in options.agents]
    assert "Desk Name" in [a.name for a in options.agents]
    assert "gone" not in [a.name for a in options.active_agents]


# --- Never stale ---------------------------------------------------------------------------


@pytest.fixture
def warm(alice_client: Client, ticket_a: Ticket) -> str:
    """The page once, so that its lists are in the cache."""
    return page(alice_client, ticket_a)


def test_renaming_a_team_shows_on_the_next_load(
    alice_client: Client, alice: Agent, ticket_a: Ticket, workspace_a: Workspace
) -> None:
    team = TeamFactory(workspace=workspace_a, name="Printers")
    assert "Printers" in picker(page(alice_client, ticket_a), "team")
    workspace_services.team_update(workspace=workspace_a, actor=alice, team=team, name="Toner")
    teams = picker(page(alice_client, ticket_a), "team")
    assert "Toner" in teams and "Printers" not in teams


def test_a_new_deactivated_and_reactivated_agent_show_on_the_next_load(
    alice_client: Client, alice: Agent, ticket_a: Ticket, workspace_a: Workspace, warm: str
) -> None:
    assert "Nina New" not in picker(warm, "assignee")
    nina = workspace_services.agent_add(
        workspace=workspace_a, user=UserFactory(name="Nina New"), role=AgentRole.AGENT
    )
    assert "Nina New" in picker(page(alice_client, ticket_a), "assignee")
    workspace_services.agent_set_active(
        workspace=workspace_a, actor=alice, agent=nina, active=False
    )
    assert "Nina New" not in picker(page(alice_client, ticket_a), "assignee")
    # Reactivation: the service's own write, not only the deactivation's.
    workspace_services.agent_set_active(workspace=workspace_a, actor=alice, agent=nina, active=True)
    assert "Nina New" in picker(page(alice_client, ticket_a), "assignee")


def test_a_renamed_user_and_display_name_show_on_the_next_load(
    alice_client: Client, ticket_a: Ticket, bob: Agent, warm: str
) -> None:
    assert "Bob Agent" in picker(warm, "assignee")
    bob.user.name = "Robert Agent"
    bob.user.save(update_fields=["name"])
    assert "Robert Agent" in picker(page(alice_client, ticket_a), "assignee")
    bob.display_name = "Bobby"
    bob.save()  # the Django admin's way: every field
    assignees = picker(page(alice_client, ticket_a), "assignee")
    assert "Bobby" in assignees and "Robert Agent" not in assignees


def test_categories_tags_and_canned_replies_show_on_the_next_load(
    alice_client: Client, alice: Agent, ticket_a: Ticket, workspace_a: Workspace, warm: str
) -> None:
    ws = workspace_a
    category = ticket_services.category_create(workspace=ws, actor=alice, name="Hardware")
    # A tag made by tagging a ticket (inside ticket_update), not in the settings.
    ticket_services.ticket_add_tags(ticket=ticket_a, actor=Actor.for_agent(alice), tags=["ink"])
    canned = ticket_services.canned_reply_create(
        workspace=ws, actor=alice, title="Welcome", body="Hello!", shared=True
    )
    html = page(alice_client, ticket_a)
    assert "Hardware" in picker(html, "category")
    assert "ink" in tag_choices(html)
    assert canned_titles(html) == ["Welcome"]

    ticket_services.category_update(workspace=ws, actor=alice, category=category, name="Kit")
    ticket_services.canned_reply_update(
        workspace=ws, actor=alice, canned_reply=canned, title="Greetings"
    )
    ticket_services.tag_create(workspace=ws, actor=alice, name="paper")
    html = page(alice_client, ticket_a)
    assert "Kit" in picker(html, "category") and "Hardware" not in picker(html, "category")
    assert canned_titles(html) == ["Greetings"]
    assert {"ink", "paper"} <= set(tag_choices(html))

    ticket_services.category_delete(workspace=ws, actor=alice, category=category)
    ticket_services.canned_reply_delete(workspace=ws, actor=alice, canned_reply=canned)
    Tag.objects.for_workspace(ws).filter(name="paper").delete()  # a queryset delete
    html = page(alice_client, ticket_a)
    assert "Kit" not in picker(html, "category")
    assert canned_titles(html) == []
    assert "paper" not in tag_choices(html)


def test_a_save_of_nothing_shown_keeps_the_cache(alice: Agent, workspace_a: Workspace) -> None:
    before = panel.panel_version(workspace_a.pk)
    alice.save(update_fields=["last_seen_at"])
    alice.user.save(update_fields=["last_login"])
    canned = CannedReply.objects.create(workspace=workspace_a, title="T", body="B")
    after_create = panel.panel_version(workspace_a.pk)
    assert after_create != before
    canned.usage_count = 3
    canned.save(update_fields=["usage_count"])
    assert panel.panel_version(workspace_a.pk) == after_create
    alice.display_name = "Al"
    alice.save(update_fields=["display_name"])
    assert panel.panel_version(workspace_a.pk) != after_create


def test_the_version_changes_again_after_commit(
    alice: Agent, workspace_a: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    # A page that read the lists between the change and its commit cached the old rows
    # under the first new token: the second one, after commit, leaves them unread.
    team = TeamFactory(workspace=workspace_a)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        workspace_services.team_update(workspace=workspace_a, actor=alice, team=team, name="X")
        during = panel.panel_version(workspace_a.pk)
    assert callbacks
    assert panel.panel_version(workspace_a.pk) != during


def test_without_a_cache_the_page_reads_the_database(
    alice_client: Client, ticket_a: Ticket, workspace_a: Workspace, monkeypatch: Any
) -> None:
    class Down:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> Any:
                raise RedisConnectionError("down")

            return fail

    TeamFactory(workspace=workspace_a, name="Printers")
    monkeypatch.setattr(panel, "cache", Down())
    monkeypatch.setattr(cache_versions, "cache", Down())
    assert "Printers" in picker(page(alice_client, ticket_a), "team")
    Team.objects.filter(name="Printers").update(name="Toner")  # no signal, no cache
    assert "Toner" in picker(page(alice_client, ticket_a), "team")


# --- Never another workspace's --------------------------------------------------------------


def test_the_lists_are_the_workspaces_own(
    signed_in: Any,
    alice_client: Client,
    alice: Agent,
    charlie: Agent,
    ticket_a: Ticket,
    ticket_b: Ticket,
    workspace_a: Workspace,
    workspace_b: Workspace,
) -> None:
    TeamFactory(workspace=workspace_a, name="Acme printers")
    TeamFactory(workspace=workspace_b, name="Globex phones")
    charlie_client = signed_in(charlie)
    a_html = page(alice_client, ticket_a)
    b_html = page(charlie_client, ticket_b)
    # Both warm now: each still sees only its own.
    for _ in range(2):
        assert "Acme printers" in picker(a_html, "team")
        assert "Globex phones" not in picker(a_html, "team")
        assert "Globex phones" in picker(b_html, "team")
        assert "Acme printers" not in picker(b_html, "team")
        assert "Charlie Admin" not in picker(a_html, "assignee")
        assert "Alice Admin" not in picker(b_html, "assignee")
        a_html = page(alice_client, ticket_a)
        b_html = page(charlie_client, ticket_b)
    # A change in one workspace leaves the other's cache as it was.
    b_version = panel.panel_version(workspace_b.pk)
    TeamFactory(workspace=workspace_a, name="Acme ink")
    assert panel.panel_version(workspace_b.pk) == b_version


def test_personal_canned_replies_stay_their_owners(
    alice_client: Client, bob_client: Client, alice: Agent, bob: Agent, ticket_a: Ticket
) -> None:
    ws = ticket_a.workspace
    ticket_services.canned_reply_create(workspace=ws, actor=alice, title="Alice's own", body="a")
    ticket_services.canned_reply_create(workspace=ws, actor=bob, title="Bob's own", body="b")
    ticket_services.canned_reply_create(
        workspace=ws, actor=alice, title="Shared", body="s", shared=True
    )
    for _ in range(2):  # cold, then warm
        assert canned_titles(page(alice_client, ticket_a)) == ["Alice's own", "Shared"]
        assert canned_titles(page(bob_client, ticket_a)) == ["Bob's own", "Shared"]
