"""The admin as a whole: every registered page loads, changelists do not N+1, tenants are
kept apart for workspace admins, and history is read-only.

Per-model behaviour (ticket actions, secrets, agents, inlines) is tested beside each app's
``admin.py``.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from enque.tests.admin_helpers import changeform_data, populate
from enque.tests.factories import CustomerFactory, TeamFactory, TicketFactory, UserFactory
from tickets.models import Ticket, TicketEvent
from workspaces.models import Agent, Customer, TeamMembership

OUR_APPS = {"workspaces", "tickets", "integrations", "automation"}
REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture(autouse=True)
def _memory_storage(settings) -> None:
    # Attachments and raw mail written by the tests stay in memory.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


@pytest.fixture
def world(
    workspace_a, workspace_b, alice, bob, charlie, customer_a, customer_b, ticket_a, ticket_b
):
    """Both workspaces with a row of every model; Alice and Charlie are staff."""
    populate(workspace_a, alice, customer_a, ticket_a)
    populate(workspace_b, charlie, customer_b, ticket_b)
    for agent in (alice, charlie):
        agent.user.is_staff = True
        agent.user.save(update_fields=["is_staff"])
    return {"a": ticket_a, "b": ticket_b}


@pytest.fixture
def staff_client(client, alice):
    """Alice: staff, admin of workspace A only."""
    alice.user.is_staff = True
    alice.user.save(update_fields=["is_staff"])
    client.force_login(alice.user)
    return client


# --- Every page loads ------------------------------------------------------------------------


def test_every_model_of_our_apps_is_registered() -> None:
    from django.apps import apps

    missing = [
        m._meta.label
        for label in OUR_APPS
        for m in apps.get_app_config(label).get_models()
        if m not in admin.site._registry
    ]
    assert missing == []


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_changelist_and_add_page_load_for_a_superuser(admin_client, admin_user, world, model):
    assert admin_client.get(admin_url(model, "changelist")).status_code == 200
    request = RequestFactory().get("/")
    request.user = admin_user
    addable = admin.site._registry[model].has_add_permission(request)
    # Read-only models (history, machine state) refuse the add page to everyone.
    assert admin_client.get(admin_url(model, "add")).status_code == (200 if addable else 403)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_change_page_loads_for_a_superuser(admin_client, world, model) -> None:
    obj = model._default_manager.order_by("pk").first()
    if obj is None:
        assert model._meta.app_label not in OUR_APPS, "the fixture should make one of each"
        pytest.skip(f"no {model._meta.label} row")
    response = admin_client.get(admin_url(model, "change", obj.pk))
    assert response.status_code == 200, response.content[:500]


@pytest.mark.parametrize(
    "model", [m for m in REGISTERED if m._meta.app_label in OUR_APPS], ids=lambda m: m._meta.label
)
def test_every_page_loads_for_a_workspace_admin(staff_client, alice, world, model) -> None:
    from workspaces.models import User, Workspace

    if model is User:  # global: superusers only
        assert staff_client.get(admin_url(model, "changelist")).status_code == 403
        return
    assert staff_client.get(admin_url(model, "changelist")).status_code == 200
    request = RequestFactory().get("/")
    request.user = alice.user
    addable = admin.site._registry[model].has_add_permission(request)
    assert staff_client.get(admin_url(model, "add")).status_code == (200 if addable else 403)
    workspace = world["a"].workspace
    own = model._default_manager.filter(
        **({"pk": workspace.pk} if model is Workspace else {"workspace": workspace})
    ).first()
    assert staff_client.get(admin_url(model, "change", own.pk)).status_code == 200


def test_ticket_page_shows_thread_attachments_tags_and_history(admin_client, world) -> None:
    ticket = world["a"]
    response = admin_client.get(admin_url(Ticket, "change", ticket.pk))
    html = response.content.decode()
    assert "Our printer is on fire again" in html  # the first message and its body
    assert "We are on it." in html  # an agent reply
    assert "hello.txt" in html
    assert (
        reverse("admin:tickets_ticketattachment_download", args=[world["a"].attachments.get().pk])
        in html
    )
    assert "vip" in html
    assert "Field changed" in html  # the history inline


# --- Query counts ----------------------------------------------------------------------------


def _count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def _more_tickets(workspace, agent, n: int) -> None:
    team = TeamFactory(workspace=workspace)
    TeamMembership.objects.create(workspace=workspace, team=team, agent=agent)
    for i in range(n):
        # Every other ticket is assigned, in a team, with its own customer: each related
        # row a list shows is distinct, so a missing select_related shows up as N queries.
        TicketFactory(
            workspace=workspace,
            assignee=agent if i % 2 else None,
            team=team if i % 2 else None,
        )


@pytest.mark.parametrize(
    "model", [Ticket, Customer, Agent, TicketEvent], ids=lambda m: m._meta.label
)
@pytest.mark.parametrize("as_staff", [False, True], ids=["superuser", "workspace-admin"])
def test_changelist_query_count_does_not_grow_with_rows(
    client, admin_user, workspace_a, alice, model, as_staff
) -> None:
    from tickets.services import ticket_update

    user = alice.user if as_staff else admin_user
    if as_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    client.force_login(user)
    url = admin_url(model, "changelist")

    def grow(n: int) -> None:
        _more_tickets(workspace_a, alice, n)
        for i in range(n):
            CustomerFactory(workspace=workspace_a)
            Agent.objects.create(workspace=workspace_a, user=UserFactory(), display_name=f"A{i}")
        for ticket in Ticket.objects.for_workspace(workspace_a).order_by("-pk")[:n]:
            ticket_update(ticket=ticket, actor=_actor(alice), priority="high")

    grow(3)
    few = _count_queries(client, url)
    grow(27)
    many = _count_queries(client, url)
    # The same handful whether the page shows 3 rows or 30 (tickets, as a superuser: 8):
    #   session; user; [workspace admin: their workspaces (scope); Django's permission
    #   lookups for the sidebar's non-tenant models (2)]; the filters' choices (workspaces;
    #   for tickets also assignees, teams, categories); the page's COUNT; the rows, with
    #   every related row shown (customer, assignee and its user, team...) joined in.
    assert many == few


def test_no_changelist_of_our_apps_grows_with_its_rows(
    admin_client, workspace_a, alice, bob, customer_a, ticket_a
) -> None:
    """Every list, measured with one and with two of each kind of row (each with its own
    related rows): a display column that fetches per row makes the second count larger."""
    from tickets.services import ticket_create

    models = [m for m in REGISTERED if m._meta.app_label in OUR_APPS]
    populate(workspace_a, alice, customer_a, ticket_a)
    once = {m: _count_queries(admin_client, admin_url(m, "changelist")) for m in models}
    other_customer = CustomerFactory(workspace=workspace_a)
    second = ticket_create(
        workspace=workspace_a,
        actor=_actor(bob),
        subject="Second",
        body_text="Another one",
        customer=other_customer,
    )
    populate(workspace_a, bob, other_customer, second, copy=2)
    twice = {m: _count_queries(admin_client, admin_url(m, "changelist")) for m in models}
    grew = {m._meta.label: (once[m], twice[m]) for m in models if twice[m] != once[m]}
    assert grew == {}


def _actor(agent):
    from tickets.actors import Actor

    return Actor.for_agent(agent)


# --- Tenancy -----------------------------------------------------------------------------------


def test_workspace_admin_sees_only_their_workspace(
    staff_client, world, customer_a, customer_b
) -> None:
    html = staff_client.get(admin_url(Ticket, "changelist")).content.decode()
    assert "Printer on fire" in html
    assert "Cannot log in" not in html

    html = staff_client.get(admin_url(Customer, "changelist")).content.decode()
    assert customer_a.email in html
    assert customer_b.email not in html
    assert "Globex Help" not in html  # not even in the workspace filter


@pytest.mark.parametrize("model_name", ["ticket", "customer", "mailbox", "attachment"], ids=str)
def test_other_workspaces_objects_are_missing_for_a_workspace_admin(
    staff_client, world, model_name
) -> None:
    from integrations.models import MailboxConnection
    from tickets.models import TicketAttachment

    obj = {
        "ticket": world["b"],
        "customer": world["b"].customer,
        "mailbox": MailboxConnection.objects.get(workspace=world["b"].workspace),
        "attachment": TicketAttachment.objects.get(workspace=world["b"].workspace),
    }[model_name]
    response = staff_client.get(admin_url(type(obj), "change", obj.pk))
    assert response.status_code == 302  # "does not exist", like a missing object
    assert response.url == reverse("admin:index")
    post = staff_client.post(admin_url(type(obj), "change", obj.pk), {})
    # A read-only model refuses the POST itself (403); the others find nothing (302).
    assert post.status_code in (302, 403)
    assert b"hello" not in post.content
    assert staff_client.get(admin_url(type(obj), "history", obj.pk)).status_code == 302


def test_attachment_download_is_scoped(staff_client, world) -> None:
    own = world["a"].attachments.get()
    other = world["b"].attachments.get()
    response = staff_client.get(reverse("admin:tickets_ticketattachment_download", args=[own.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content) == b"hello attachment"
    missing = staff_client.get(reverse("admin:tickets_ticketattachment_download", args=[other.pk]))
    assert missing.status_code == 404


def test_workspace_admin_cannot_pick_another_workspaces_customer(
    staff_client, world, workspace_a, customer_b
) -> None:
    before = Ticket.objects.count()
    response = staff_client.post(
        admin_url(Ticket, "add"),
        {
            "workspace": workspace_a.pk,
            "customer": customer_b.pk,
            "subject": "Sneaky",
            "body": "Hello",
            "channel": "web",
            "priority": "normal",
        },
    )
    assert response.status_code == 200
    assert "customer" in response.context["adminform"].form.errors
    assert Ticket.objects.count() == before


def test_workspace_admin_cannot_pick_another_workspace(staff_client, world, workspace_b) -> None:
    response = staff_client.post(
        admin_url(Customer, "add"), {"workspace": workspace_b.pk, "email": "x@y.test"}
    )
    assert response.status_code == 200
    assert "workspace" in response.context["adminform"].form.errors
    assert not Customer.objects.filter(email="x@y.test").exists()


def test_superuser_cannot_mix_workspaces_either(admin_client, world, charlie) -> None:
    ticket = world["a"]
    page = admin_client.get(admin_url(Ticket, "change", ticket.pk))
    data = changeform_data(page)
    data["assignee"] = charlie.pk  # an agent of workspace B on a ticket of A
    response = admin_client.post(admin_url(Ticket, "change", ticket.pk), data)
    assert response.status_code == 200
    assert "assignee" in response.context["adminform"].form.errors
    ticket.refresh_from_db()
    assert ticket.assignee_id is None


def test_autocomplete_offers_only_the_admins_workspaces(
    staff_client, world, customer_a, customer_b
) -> None:
    response = staff_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "tickets", "model_name": "ticket", "field_name": "customer", "term": ""},
    )
    ids = {int(r["id"]) for r in response.json()["results"]}
    assert customer_a.pk in ids
    assert customer_b.pk not in ids


def test_plain_agents_get_no_admin_by_being_staff(client, world, bob) -> None:
    bob.user.is_staff = True
    bob.user.save(update_fields=["is_staff"])
    client.force_login(bob.user)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert index.context["app_list"] == []
    assert client.get(admin_url(Ticket, "changelist")).status_code == 403
    assert client.get(admin_url(Customer, "add")).status_code == 403


def test_agents_who_are_not_staff_cannot_enter_the_admin(client, world, alice) -> None:
    alice.user.is_staff = False
    alice.user.save(update_fields=["is_staff"])
    client.force_login(alice.user)
    response = client.get(admin_url(Ticket, "changelist"))
    assert response.status_code == 302
    assert "/login/" in response.url


def test_a_deactivated_admin_loses_the_workspace(staff_client, world, alice) -> None:
    Agent.objects.filter(pk=alice.pk).update(is_active=False)
    assert staff_client.get(admin_url(Ticket, "changelist")).status_code == 403


def test_users_are_for_superusers_only(staff_client, world) -> None:
    from workspaces.models import User

    assert staff_client.get(admin_url(User, "changelist")).status_code == 403
    index = staff_client.get(reverse("admin:index"))
    models = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert "User" not in models
    assert {"Ticket", "Customer", "Workspace", "MailboxConnection"} <= models


# --- History is read-only ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["superuser", "workspace-admin"])
def test_history_is_read_only(client, admin_user, world, alice, who) -> None:
    user = admin_user if who == "superuser" else alice.user
    client.force_login(user)
    event = TicketEvent.objects.filter(ticket=world["a"]).first()
    assert client.get(admin_url(TicketEvent, "add")).status_code == 403
    page = client.get(admin_url(TicketEvent, "change", event.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert (
        client.post(admin_url(TicketEvent, "change", event.pk), {"kind": "deleted"}).status_code
        == 403
    )
    assert (
        client.post(admin_url(TicketEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    )
    changelist = client.get(admin_url(TicketEvent, "changelist"))
    assert "delete_selected" not in changelist.content.decode()
    assert TicketEvent.objects.filter(pk=event.pk, kind=event.kind).exists()

    # On the ticket page, the history inline has no add row, no delete box, no inputs.
    ticket_page = client.get(admin_url(Ticket, "change", world["a"].pk))
    history = next(
        f for f in ticket_page.context["inline_admin_formsets"] if f.opts.model is TicketEvent
    )
    assert not history.has_add_permission
    assert not history.has_change_permission
    assert not history.has_delete_permission
    assert history.formset.forms  # the rows are shown
