"""Tenant isolation of ``/v1``, generated from the URL resolver so no route escapes it.

Alice is the admin of workspace A; Charlie the admin of workspace B, which holds one object
of every kind the API addresses (and of the kinds it does not: comments, an invitation, a
mailbox...). Three promises are checked:

1. **Objects.** Every ``/v1`` route that takes an object in its path (``<pk>``,
   ``<number>``), with every method it answers, called with Alice's token and B's object,
   is a 404 in the error envelope — exactly the answer for a missing object — and changes
   nothing in either workspace. The routes are walked from ``get_resolver()``; a route
   with no entry in ``ROUTE_OBJECTS`` (or a write without one in ``WRITE_BODIES``) fails
   ``test_every_object_route_is_covered``, so a new route cannot silently escape.
2. **References.** Every write that takes a reference (``customer_id``, ``assignee_id``,
   ``team_id``, ``category_id``, ``attachment_ids``, ``agent_ids``, ``company_id``,
   ``team_ids``, a view's filters, a ticket number...) answers 400 ``invalid_reference``
   naming the field when given B's object, and changes nothing; so do the reference filters
   of the lists.
3. **Lists.** No list, search (``q=``) or count shown to Alice contains anything of B.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from enque.tests.factories import CannedReplyFactory, CategoryFactory, TagFactory
from integrations.models import MailboxConnection, MicrosoftIntegration
from tickets import services as ticket_services
from tickets.actors import Actor
from tickets.models import (
    CannedReply,
    Category,
    SavedView,
    ScheduledComment,
    Tag,
    Ticket,
    TicketAttachment,
)
from tickets.tests.api_support import error, use_memory_storage
from workspaces import services as workspace_services
from workspaces.models import Agent, Company, Customer, Team, TenantModel, Workspace

pytestmark = pytest.mark.django_db

# In every name, subject and body of workspace B: if it shows up in an answer to Alice,
# something of B leaked.
MARKER = "bravoleak"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

# The path arguments that name an object. A /v1 route with any other argument fails
# test_every_object_route_is_covered until this test learns what it names.
OBJECT_KWARGS = frozenset({"pk", "id", "number"})
# Routes under /v1 whose path arguments are not objects.
NOT_OBJECT_ROUTES = frozenset({"api-not-found"})


# --- Walking the resolver ---------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    kwargs: frozenset[str]
    methods: tuple[str, ...]


def _methods(callback: Any) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)
    if actions is not None:  # a DRF viewset route: {"get": "retrieve", ...}
        # DRF adds "head" to a route's actions the first time it serves a GET.
        return tuple(sorted(m for m in actions if m not in ("head", "options")))
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:
        return ("get",)
    return tuple(
        sorted(
            m
            for m in view_class.http_method_names
            if m not in ("head", "options") and hasattr(view_class, m)
        )
    )


def _walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        else:
            yield route, pattern


def v1_routes() -> list[Route]:
    """Every route under /v1/, with its path arguments and methods. An unnamed one goes by
    its path, which no table here names: a new unnamed route fails the coverage test too."""
    routes = []
    for path, pattern in _walk(get_resolver().url_patterns, ""):
        if not path.startswith("v1/"):
            continue
        routes.append(
            Route(
                name=pattern.name or path,
                kwargs=frozenset(pattern.pattern.regex.groupindex),
                methods=_methods(pattern.callback),
            )
        )
    return routes


def object_routes() -> list[Route]:
    return [r for r in v1_routes() if r.kwargs and r.name not in NOT_OBJECT_ROUTES]


# GET routes without path arguments that are not lists: the Microsoft OAuth hand-offs
# (they need a query, and their workspace comes from the token or the bound flow; see
# integrations/tests/test_microsoft_oauth.py and the "?integration" reference below).
NOT_LIST_ROUTES = frozenset(
    {
        "auth-microsoft",
        "auth-microsoft-callback",
        "mailbox-microsoft-authorize",
        "mailbox-microsoft-callback",
    }
)


def list_routes() -> list[Route]:
    """GET routes without path arguments: lists and singletons (schema and docs aside)."""
    return [
        r
        for r in v1_routes()
        if not r.kwargs
        and "get" in r.methods
        and not r.name.startswith("api-")
        and r.name not in NOT_LIST_ROUTES
    ]


# --- Workspace B: one object of every kind --------------------------------------------------


@dataclass
class World:
    a: Workspace
    alice: Agent
    a_ticket: Ticket
    a_customer: Customer
    a_team: Team
    a_category: Category
    a_canned: CannedReply
    b: Workspace
    charlie: Agent
    b_agent: Agent
    b_ticket: Ticket
    b_deleted_ticket: Ticket
    b_customer: Customer
    b_company: Company
    b_team: Team
    b_category: Category
    b_tag: Tag
    b_canned: CannedReply
    b_view: SavedView
    b_attachment: TicketAttachment
    b_free_attachment: TicketAttachment
    b_scheduled: ScheduledComment
    b_mailbox: MailboxConnection
    b_workflow: Any = None
    b_automation: Any = None
    b_business_hours: Any = None
    b_sla_policy: Any = None
    b_macro: Any = None
    b_notification: Any = None


def _automation_objects(b: Workspace, charlie: Agent, ticket: Ticket) -> dict[str, Any]:
    """Workspace B's rules, schedules, macro and notification (automation.api routes)."""
    from automation import models as automation_models

    workflow = automation_models.Workflow.objects.create(
        workspace=b, name=f"{MARKER} workflow", trigger="ticket_created"
    )
    automation = automation_models.Automation.objects.create(
        workspace=b, name=f"{MARKER} rule", trigger="ticket_created", workflow=workflow
    )
    business_hours = automation_models.BusinessHours.objects.create(
        workspace=b, name=f"{MARKER} hours", timezone="UTC"
    )
    sla_policy = automation_models.SLAPolicy.objects.create(
        workspace=b, name=f"{MARKER} SLA", business_hours=business_hours
    )
    macro = automation_models.Macro.objects.create(workspace=b, name=f"{MARKER} macro", actions=[])
    notification = automation_models.Notification.objects.create(
        workspace=b,
        recipient=charlie,
        kind=automation_models.NotificationKind.values[0],
        ticket=ticket,
        data={"marker": MARKER},
    )
    return {
        "b_workflow": workflow,
        "b_automation": automation,
        "b_business_hours": business_hours,
        "b_sla_policy": sla_policy,
        "b_macro": macro,
        "b_notification": notification,
    }


def _upload(workspace: Workspace, agent: Agent, name: str) -> TicketAttachment:
    return ticket_services.attachment_upload(
        workspace=workspace,
        actor=Actor.for_agent(agent),
        file=SimpleUploadedFile(name, PNG, content_type="image/png"),
    )


@pytest.fixture
def world(settings: Any, alice: Agent, charlie: Agent) -> World:
    use_memory_storage(settings)
    # The export stream holds back the last few seconds; here everything counts at once.
    settings.TICKET_EXPORT_SETTLE_SECONDS = 0
    settings.RATELIMIT_ENABLE = False
    a, b = alice.workspace, charlie.workspace
    alice_actor, charlie_actor = Actor.for_agent(alice), Actor.for_agent(charlie)

    # Workspace A: one of each kind Alice's requests refer to, so the lists are not empty.
    a_customer = workspace_services.customer_create(
        workspace=a, actor=alice, email="carol@a-customer.test", name="Carol Alpha"
    )
    a_team = workspace_services.team_create(workspace=a, name="Alpha team", members=[alice])
    a_category = CategoryFactory(workspace=a, name="Alpha category")
    a_canned = CannedReplyFactory(workspace=a, title="Alpha canned")
    a_ticket = ticket_services.ticket_create(
        workspace=a,
        actor=alice_actor,
        subject="Alpha printer",
        customer=a_customer,
        body_text="Alpha body",
        channel="api",
    )

    # Workspace B: everything named with the marker.
    b_agent = workspace_services.agent_add(
        workspace=b,
        user=workspace_services.user_create(email=f"{MARKER}-agent@b.test", name=MARKER),
    )
    b_company = workspace_services.company_create(
        workspace=b, name=f"{MARKER} company", domains=[f"{MARKER}.test"]
    )
    b_customer = workspace_services.customer_create(
        workspace=b, actor=charlie, email=f"dora@{MARKER}.test", name=f"Dora {MARKER}"
    )
    b_team = workspace_services.team_create(
        workspace=b, name=f"{MARKER} team", members=[charlie, b_agent]
    )
    b_category = CategoryFactory(workspace=b, name=f"{MARKER} category")
    b_tag = TagFactory(workspace=b, name=f"{MARKER}-tag")
    b_canned = CannedReplyFactory(workspace=b, title=f"{MARKER} canned", category=b_category)
    b_mailbox = MailboxConnection.objects.create(
        workspace=b, provider="imap", email_address=f"help@{MARKER}.test"
    )
    tickets = [
        ticket_services.ticket_create(
            workspace=b,
            actor=charlie_actor,
            subject=f"{MARKER} subject {n}",
            customer=b_customer,
            body_text=f"{MARKER} body {n}",
            channel="api",
            assignee=charlie,
            team=b_team,
            category=b_category,
            tags=[b_tag.name],
        )
        for n in range(3)
    ]
    # B's ticket numbers must not exist in A, or /v1/tickets/<n> would rightly find A's.
    b_deleted_ticket, b_ticket = tickets[1], tickets[2]
    ticket_services.ticket_delete(ticket=b_deleted_ticket, actor=charlie_actor)
    b_attachment = _upload(b, charlie, f"{MARKER}.png")
    ticket_services.comment_create(
        ticket=b_ticket,
        actor=charlie_actor,
        body_text=f"{MARKER} reply",
        internal=True,
        attachments=[b_attachment],
    )
    b_free_attachment = _upload(b, charlie, f"{MARKER}-free.png")
    b_scheduled = ticket_services.comment_schedule(
        ticket=b_ticket,
        actor=charlie_actor,
        send_at=timezone.now() + timedelta(days=1),
        body_text=f"{MARKER} later",
        internal=True,
    )
    b_view = ticket_services.saved_view_create(
        workspace=b, agent=charlie, name=f"{MARKER} view", filters={}, shared=True
    )
    workspace_services.invitation_create(
        workspace=b, actor=charlie, email=f"ivy@{MARKER}.test", team_ids=[b_team.pk]
    )
    for ticket in (b_ticket, b_deleted_ticket):
        assert not Ticket.objects.filter(workspace=a, number=ticket.number).exists()

    return World(
        a=a,
        alice=alice,
        a_ticket=a_ticket,
        a_customer=a_customer,
        a_team=a_team,
        a_category=a_category,
        a_canned=a_canned,
        b=b,
        charlie=charlie,
        b_agent=b_agent,
        b_ticket=b_ticket,
        b_deleted_ticket=b_deleted_ticket,
        b_customer=b_customer,
        b_company=b_company,
        b_team=b_team,
        b_category=b_category,
        b_tag=b_tag,
        b_canned=b_canned,
        b_view=b_view,
        b_attachment=b_attachment,
        b_free_attachment=b_free_attachment,
        b_scheduled=b_scheduled,
        b_mailbox=b_mailbox,
        **_automation_objects(b, charlie, b_ticket),
    )


def snapshot(*workspaces: Workspace) -> dict[str, Any]:
    """Every row of these workspaces (every tenant model) and the workspaces themselves."""
    ids = [w.pk for w in workspaces]
    rows: dict[str, Any] = {
        "workspace": list(Workspace.objects.filter(pk__in=ids).order_by("pk").values())
    }
    for model in apps.get_models():
        if issubclass(model, TenantModel) and not model._meta.abstract:
            rows[model._meta.label] = list(
                model.objects.filter(workspace_id__in=ids).order_by("pk").values()
            )
    return rows


# --- 1. Another workspace's object is a 404, on every route and method -------------------

# Each route's object of workspace B, as the value its path takes (an id, a ticket number).
ObjectRef = Callable[[World], Any]
_ticket: ObjectRef = lambda w: w.b_ticket.number  # noqa: E731
_deleted_ticket: ObjectRef = lambda w: w.b_deleted_ticket.number  # noqa: E731

ROUTE_OBJECTS: dict[str, ObjectRef] = {
    "workspace-detail": lambda w: w.b.pk,
    "people-agent-detail": lambda w: w.b_agent.pk,
    "people-agent-deactivate": lambda w: w.b_agent.pk,
    "people-agent-reactivate": lambda w: w.b_agent.pk,
    "team-detail": lambda w: w.b_team.pk,
    "team-members": lambda w: w.b_team.pk,
    "customer-detail": lambda w: w.b_customer.pk,
    "customer-tickets": lambda w: w.b_customer.pk,
    "company-detail": lambda w: w.b_company.pk,
    "company-customers": lambda w: w.b_company.pk,
    "company-tickets": lambda w: w.b_company.pk,
    "category-detail": lambda w: w.b_category.pk,
    "tag-detail": lambda w: w.b_tag.pk,
    "canned-reply-detail": lambda w: w.b_canned.pk,
    "canned-reply-render": lambda w: w.b_canned.pk,
    "ticket-detail": _ticket,
    "ticket-assign": _ticket,
    "ticket-comments": _ticket,
    "ticket-events": _ticket,
    "ticket-merge": _ticket,
    "ticket-reply": _ticket,
    # Restore reaches deleted tickets (its own workspace's only).
    "ticket-restore": _deleted_ticket,
    "scheduled-comment-detail": lambda w: w.b_scheduled.pk,
    "scheduled-comment-cancel": lambda w: w.b_scheduled.pk,
    "saved-view-detail": lambda w: w.b_view.pk,
    "saved-view-tickets": lambda w: w.b_view.pk,
    "attachment-detail": lambda w: w.b_attachment.pk,
    "attachment-download": lambda w: w.b_attachment.pk,
    "workflow-detail": lambda w: w.b_workflow.pk,
    "automation-detail": lambda w: w.b_automation.pk,
    "automation-runs": lambda w: w.b_automation.pk,
    "automation-test": lambda w: w.b_automation.pk,
    "business-hours-detail": lambda w: w.b_business_hours.pk,
    "sla-policy-detail": lambda w: w.b_sla_policy.pk,
    "macro-detail": lambda w: w.b_macro.pk,
    "macro-preview": lambda w: w.b_macro.pk,
    "macro-apply": lambda w: w.b_macro.pk,
    "notification-detail": lambda w: w.b_notification.pk,
    "notification-read": lambda w: w.b_notification.pk,
    "ticket-sla": _ticket,
    "mailbox-detail": lambda w: w.b_mailbox.pk,
    "mailbox-sync": lambda w: w.b_mailbox.pk,
    "mailbox-test": lambda w: w.b_mailbox.pk,
}

# A body for every write, valid in every respect but the object: the 404 must come from the
# lookup, not from validation. None: the route takes no body.
Body = Callable[[World], dict[str, Any]] | None
WRITE_BODIES: dict[tuple[str, str], Body] = {
    ("workspace-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("workspace-detail", "delete"): lambda w: {"confirm": w.b.slug},
    ("people-agent-detail", "patch"): lambda w: {"role": "light"},
    ("people-agent-deactivate", "post"): None,
    ("people-agent-reactivate", "post"): None,
    ("team-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("team-detail", "delete"): None,
    ("team-members", "post"): lambda w: {"agent_ids": [w.alice.pk]},
    ("team-members", "put"): lambda w: {"agent_ids": [w.alice.pk]},
    ("customer-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("customer-detail", "delete"): None,
    ("company-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("company-detail", "delete"): None,
    ("category-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("category-detail", "delete"): None,
    ("tag-detail", "patch"): lambda w: {"name": "hijacked"},
    ("tag-detail", "delete"): None,
    ("canned-reply-detail", "patch"): lambda w: {"title": "Hijacked"},
    ("canned-reply-detail", "delete"): None,
    ("canned-reply-render", "post"): lambda w: {"ticket": w.a_ticket.number},
    ("ticket-detail", "patch"): lambda w: {"subject": "Hijacked", "assignee_id": w.alice.pk},
    ("ticket-detail", "delete"): None,
    ("ticket-assign", "post"): lambda w: {"agent_id": w.alice.pk},
    ("ticket-merge", "post"): lambda w: {"into": w.a_ticket.number},
    ("ticket-reply", "post"): lambda w: {"body": "Hijacked", "status": "closed"},
    ("ticket-restore", "post"): None,
    ("scheduled-comment-cancel", "post"): None,
    ("saved-view-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("saved-view-detail", "delete"): None,
    ("workflow-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("workflow-detail", "delete"): None,
    ("automation-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("automation-detail", "delete"): None,
    ("automation-test", "post"): lambda w: {"ticket": w.a_ticket.number},
    ("business-hours-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("business-hours-detail", "delete"): None,
    ("sla-policy-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("sla-policy-detail", "delete"): None,
    ("macro-detail", "patch"): lambda w: {"name": "Hijacked"},
    ("macro-detail", "delete"): None,
    ("macro-preview", "post"): lambda w: {"ticket": w.a_ticket.number},
    ("macro-apply", "post"): lambda w: {"ticket": w.a_ticket.number},
    ("notification-read", "post"): None,
    ("mailbox-detail", "patch"): lambda w: {"display_name": "Hijacked", "is_active": False},
    ("mailbox-detail", "delete"): None,
    ("mailbox-sync", "post"): None,
    ("mailbox-test", "post"): None,
}


def _object_cases() -> list[Any]:
    return [
        pytest.param(route, method, id=f"{method.upper()} {route.name}")
        for route in object_routes()
        for method in route.methods
    ]


def test_every_object_route_is_covered() -> None:
    routes = object_routes()
    assert routes, "no /v1 object routes found: is the resolver walk broken?"
    names = {r.name for r in routes}
    missing = sorted(names - set(ROUTE_OBJECTS))
    assert not missing, (
        f"/v1 routes with no object of workspace B to try them with: {missing}. Add each to "
        "ROUTE_OBJECTS (and its writes to WRITE_BODIES) in this module."
    )
    stale = sorted(set(ROUTE_OBJECTS) - names)
    assert not stale, f"ROUTE_OBJECTS names routes that no longer exist: {stale}"
    unknown_kwargs = sorted(
        (r.name, sorted(r.kwargs - OBJECT_KWARGS)) for r in routes if r.kwargs - OBJECT_KWARGS
    )
    assert not unknown_kwargs, f"path arguments this test does not understand: {unknown_kwargs}"
    writes = {(r.name, m) for r in routes for m in r.methods if m != "get"}
    assert not sorted(writes - set(WRITE_BODIES)), (
        f"writes with no body in WRITE_BODIES: {sorted(writes - set(WRITE_BODIES))}"
    )
    assert not sorted(set(WRITE_BODIES) - writes), (
        f"WRITE_BODIES names writes that no longer exist: {sorted(set(WRITE_BODIES) - writes)}"
    )


def _url(route: Route, value: Any) -> str:
    return reverse(route.name, kwargs=dict.fromkeys(route.kwargs, value))


@pytest.mark.parametrize(("route", "method"), _object_cases())
def test_another_workspaces_object_is_not_found(
    world: World, client_for: Any, route: Route, method: str
) -> None:
    if route.name not in ROUTE_OBJECTS:
        pytest.fail(f"{route.name} has no object in ROUTE_OBJECTS: see the test above")
    url = _url(route, ROUTE_OBJECTS[route.name](world))
    body_for = WRITE_BODIES.get((route.name, method))
    body = body_for(world) if body_for is not None else None
    before = snapshot(world.a, world.b)

    response = getattr(client_for(world.alice), method)(url, body, format="json")

    assert response.status_code == 404, (url, response.status_code, response.content[:300])
    assert error(response)["code"] == "not_found"
    assert snapshot(world.a, world.b) == before, f"{method.upper()} {url} changed data"


@pytest.mark.parametrize(
    "route",
    [pytest.param(r, id=r.name) for r in object_routes() if "get" in r.methods],
)
def test_the_same_object_is_found_by_its_own_workspace(
    world: World, client_for: Any, route: Route
) -> None:
    # The control: B's id is right, so Alice's 404 above is the tenant check.
    if route.name not in ROUTE_OBJECTS:
        pytest.fail(f"{route.name} has no object in ROUTE_OBJECTS")
    url = _url(route, ROUTE_OBJECTS[route.name](world))
    response = client_for(world.charlie).get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])


def test_a_ticket_number_is_read_in_the_callers_workspace(world: World, client_for: Any) -> None:
    # Numbers repeat across workspaces: #1 of A is Alice's, whatever #1 of B is.
    response = client_for(world.alice).get(f"/v1/tickets/{world.a_ticket.number}")
    assert response.status_code == 200
    assert response.json()["subject"] == "Alpha printer"


def test_switching_or_signing_in_to_another_workspace_is_not_found(
    world: World, client_for: Any, api_client: APIClient
) -> None:
    world.alice.user.set_password("correct horse battery staple")
    world.alice.user.save(update_fields=["password"])
    before = snapshot(world.a, world.b)

    response = client_for(world.alice).post(
        "/v1/auth/switch-workspace", {"workspace_id": world.b.pk}, format="json"
    )
    assert response.status_code == 404
    assert error(response)["fields"] == {"workspace_id": ["Workspace not found."]}

    response = api_client.post(
        "/v1/auth/login",
        {
            "email": world.alice.user.email,
            "password": "correct horse battery staple",
            "workspace_id": world.b.pk,
        },
        format="json",
    )
    assert response.status_code == 404
    assert error(response)["fields"] == {"workspace_id": ["Workspace not found."]}
    assert snapshot(world.a, world.b) == before


# --- 2. A reference to another workspace's object is a 400 -----------------------------------


@dataclass(frozen=True)
class ForeignReference:
    method: str
    path: Callable[[World], str]
    body: Callable[[World], dict[str, Any]] | None
    field: str


def _ticket_path(w: World) -> str:
    return f"/v1/tickets/{w.a_ticket.number}"


def _new_ticket(**extra: Any) -> Callable[[World], dict[str, Any]]:
    def body(w: World) -> dict[str, Any]:
        return {
            "subject": "New",
            "body": "Hello",
            "customer": {"email": "new@a-customer.test"},
            **{key: value(w) for key, value in extra.items()},
        }

    return body


def _get(path: Callable[[World], str], field: str) -> ForeignReference:
    return ForeignReference("get", path, None, field)


# The reference filters of GET /v1/tickets and of a saved view, each with B's object.
FILTER_REFERENCES: dict[str, Callable[[World], int]] = {
    "assignee": lambda w: w.charlie.pk,
    "team": lambda w: w.b_team.pk,
    "category": lambda w: w.b_category.pk,
    "customer": lambda w: w.b_customer.pk,
    "company": lambda w: w.b_company.pk,
    "mailbox": lambda w: w.b_mailbox.pk,
}


def _view_filtered_by(name: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"name": "New", "filters": {name: FILTER_REFERENCES[name](w)}}


def _tickets_filtered_by(name: str) -> Callable[[World], str]:
    return lambda w: f"/v1/tickets?{name}={FILTER_REFERENCES[name](w)}"


def _microsoft_authorize_with_b_app(w: World) -> str:
    """Connecting a mailbox with workspace B's own Microsoft app (made as the case is built)."""
    app = MicrosoftIntegration.objects.create(
        workspace=w.b, name=f"B app {MARKER}", client_id="b-app", client_secret="s"
    )
    return f"/v1/mailboxes/microsoft/authorize?email_address=new%40a.test&integration={app.pk}"


FOREIGN_REFERENCES: dict[str, ForeignReference] = {
    # Tickets.
    "ticket create customer_id": ForeignReference(
        "post",
        lambda w: "/v1/tickets",
        lambda w: {"subject": "New", "body": "Hello", "customer_id": w.b_customer.pk},
        "customer_id",
    ),
    "ticket create assignee_id": ForeignReference(
        "post",
        lambda w: "/v1/tickets",
        _new_ticket(assignee_id=lambda w: w.charlie.pk),
        "assignee_id",
    ),
    "ticket create team_id": ForeignReference(
        "post", lambda w: "/v1/tickets", _new_ticket(team_id=lambda w: w.b_team.pk), "team_id"
    ),
    "ticket create category_id": ForeignReference(
        "post",
        lambda w: "/v1/tickets",
        _new_ticket(category_id=lambda w: w.b_category.pk),
        "category_id",
    ),
    "ticket create attachment_ids": ForeignReference(
        "post",
        lambda w: "/v1/tickets",
        _new_ticket(attachment_ids=lambda w: [w.b_free_attachment.pk]),
        "attachment_ids",
    ),
    "ticket patch assignee_id": ForeignReference(
        "patch", _ticket_path, lambda w: {"assignee_id": w.charlie.pk}, "assignee_id"
    ),
    "ticket patch team_id": ForeignReference(
        "patch", _ticket_path, lambda w: {"team_id": w.b_team.pk}, "team_id"
    ),
    "ticket patch category_id": ForeignReference(
        "patch", _ticket_path, lambda w: {"category_id": w.b_category.pk}, "category_id"
    ),
    "assign agent_id": ForeignReference(
        "post",
        lambda w: f"{_ticket_path(w)}/assign",
        lambda w: {"agent_id": w.charlie.pk},
        "agent_id",
    ),
    "assign team_id": ForeignReference(
        "post",
        lambda w: f"{_ticket_path(w)}/assign",
        lambda w: {"team_id": w.b_team.pk},
        "team_id",
    ),
    "reply attachment_ids": ForeignReference(
        "post",
        lambda w: f"{_ticket_path(w)}/reply",
        lambda w: {"body": "See attached", "attachment_ids": [w.b_free_attachment.pk]},
        "attachment_ids",
    ),
    "scheduled reply attachment_ids": ForeignReference(
        "post",
        lambda w: f"{_ticket_path(w)}/reply",
        lambda w: {
            "body": "Later",
            "send_at": (timezone.now() + timedelta(days=1)).isoformat(),
            "attachment_ids": [w.b_free_attachment.pk],
        },
        "attachment_ids",
    ),
    "merge into": ForeignReference(
        "post",
        lambda w: f"{_ticket_path(w)}/merge",
        lambda w: {"into": w.b_ticket.number},
        "into",
    ),
    "bulk assignee_id": ForeignReference(
        "post",
        lambda w: "/v1/tickets/bulk",
        lambda w: {"ids": [w.a_ticket.number], "changes": {"assignee_id": w.charlie.pk}},
        "changes.assignee_id",
    ),
    "bulk team_id": ForeignReference(
        "post",
        lambda w: "/v1/tickets/bulk",
        lambda w: {"ids": [w.a_ticket.number], "changes": {"team_id": w.b_team.pk}},
        "changes.team_id",
    ),
    "bulk category_id": ForeignReference(
        "post",
        lambda w: "/v1/tickets/bulk",
        lambda w: {"ids": [w.a_ticket.number], "changes": {"category_id": w.b_category.pk}},
        "changes.category_id",
    ),
    # People.
    "team create agent_ids": ForeignReference(
        "post",
        lambda w: "/v1/teams",
        lambda w: {"name": "New team", "agent_ids": [w.alice.pk, w.charlie.pk]},
        "agent_ids",
    ),
    "team members post agent_ids": ForeignReference(
        "post",
        lambda w: f"/v1/teams/{w.a_team.pk}/members",
        lambda w: {"agent_ids": [w.charlie.pk]},
        "agent_ids",
    ),
    "team members put agent_ids": ForeignReference(
        "put",
        lambda w: f"/v1/teams/{w.a_team.pk}/members",
        lambda w: {"agent_ids": [w.charlie.pk]},
        "agent_ids",
    ),
    "customer create company_id": ForeignReference(
        "post",
        lambda w: "/v1/customers",
        lambda w: {"email": "new@a-customer.test", "company_id": w.b_company.pk},
        "company_id",
    ),
    "customer patch company_id": ForeignReference(
        "patch",
        lambda w: f"/v1/customers/{w.a_customer.pk}",
        lambda w: {"company_id": w.b_company.pk},
        "company_id",
    ),
    "invite team_ids": ForeignReference(
        "post",
        lambda w: "/v1/agents/invite",
        lambda w: {"email": "new-agent@a.test", "team_ids": [w.b_team.pk]},
        "team_ids",
    ),
    # Settings.
    "canned reply create category_id": ForeignReference(
        "post",
        lambda w: "/v1/canned-replies",
        lambda w: {"title": "New", "body": "Hi", "category_id": w.b_category.pk},
        "category_id",
    ),
    "canned reply patch category_id": ForeignReference(
        "patch",
        lambda w: f"/v1/canned-replies/{w.a_canned.pk}",
        lambda w: {"category_id": w.b_category.pk},
        "category_id",
    ),
    "canned reply render ticket": ForeignReference(
        "post",
        lambda w: f"/v1/canned-replies/{w.a_canned.pk}/render",
        lambda w: {"ticket": w.b_ticket.number},
        "ticket",
    ),
    # Mailboxes: the defaults for the tickets they open.
    **{
        f"mailbox create {field}": ForeignReference(
            "post",
            lambda w: "/v1/mailboxes",
            lambda w, field=field, ref=ref: {
                "email_address": "new@a.test",
                "imap_host": "imap.a.test",
                "imap_username": "new@a.test",
                "imap_password": "secret",
                field: ref(w),
            },
            field,
        )
        for field, ref in (
            ("default_team_id", lambda w: w.b_team.pk),
            ("default_category_id", lambda w: w.b_category.pk),
        )
    },
    # Connecting a Microsoft 365 mailbox with another workspace's Microsoft app.
    "microsoft mailbox authorize ?integration": _get(
        _microsoft_authorize_with_b_app, "integration"
    ),
    # Saved views and the ticket list: every reference filter.
    **{
        f"view create filters.{name}": ForeignReference(
            "post", lambda w: "/v1/views", _view_filtered_by(name), f"filters.{name}"
        )
        for name in FILTER_REFERENCES
    },
    **{f"tickets ?{name}": _get(_tickets_filtered_by(name), name) for name in FILTER_REFERENCES},
    "customers ?company": _get(lambda w: f"/v1/customers?company={w.b_company.pk}", "company"),
    "agents ?team": _get(lambda w: f"/v1/agents?team={w.b_team.pk}", "team"),
    "canned replies ?category": _get(
        lambda w: f"/v1/canned-replies?category={w.b_category.pk}", "category"
    ),
    "scheduled comments ?ticket": _get(
        lambda w: f"/v1/scheduled-comments?ticket={w.b_ticket.number}", "ticket"
    ),
}


def test_a_saved_view_patch_checks_its_filters_too(world: World, client_for: Any) -> None:
    view = ticket_services.saved_view_create(
        workspace=world.a, agent=world.alice, name="Mine", filters={}
    )
    before = snapshot(world.a, world.b)
    response = client_for(world.alice).patch(
        f"/v1/views/{view.pk}", {"filters": {"team": world.b_team.pk}}, format="json"
    )
    assert response.status_code == 400
    assert error(response)["code"] == "invalid_reference"
    assert set(error(response)["fields"]) == {"filters.team"}
    assert snapshot(world.a, world.b) == before


@pytest.mark.parametrize("case", [pytest.param(c, id=n) for n, c in FOREIGN_REFERENCES.items()])
def test_a_reference_to_another_workspaces_object_is_refused(
    world: World, client_for: Any, case: ForeignReference
) -> None:
    path = case.path(world)
    body = case.body(world) if case.body is not None else None
    before = snapshot(world.a, world.b)

    response = getattr(client_for(world.alice), case.method)(path, body, format="json")

    assert response.status_code == 400, (path, response.status_code, response.content[:300])
    envelope = error(response)
    assert envelope["code"] == "invalid_reference", envelope
    assert set(envelope["fields"]) == {case.field}, envelope
    assert snapshot(world.a, world.b) == before, f"{case.method.upper()} {path} changed data"


# --- 3. Nothing of B in A's lists, searches and counts -----------------------------------------


def _leaks(response: Any) -> list[str]:
    text = response.content.decode()
    return re.findall(rf"[^\"]*{MARKER}[^\"]*", text)


def test_every_list_route_is_tried() -> None:
    # The walk below must see the lists, or it proves nothing.
    names = {r.name for r in list_routes()}
    assert {"ticket-list", "customer-list", "saved-view-list", "export-tickets"} <= names


@pytest.mark.parametrize("route", [pytest.param(r, id=r.name) for r in list_routes()])
def test_no_list_shows_another_workspaces_objects(
    world: World, client_for: Any, route: Route
) -> None:
    api = client_for(world.alice)
    url = reverse(route.name)
    response = api.get(url)
    assert response.status_code == 200, (url, response.content[:300])
    assert not _leaks(response), (url, _leaks(response))

    # The same list searched for B's names: nothing (where the list searches).
    response = api.get(url, {"q": MARKER})
    if response.status_code == 400 and "q" in error(response).get("fields", {}):
        return  # this list takes no q
    assert response.status_code == 200, (url, response.content[:300])
    assert not _leaks(response), (url, _leaks(response))
    body = response.json()
    if isinstance(body, dict) and "results" in body:
        assert body["results"] == [], url


def test_the_lists_are_not_empty_for_their_own_workspace(world: World, client_for: Any) -> None:
    # The control for the walk above: A's own objects are there; B sees its own.
    alice_api, charlie_api = client_for(world.alice), client_for(world.charlie)
    tickets = alice_api.get("/v1/tickets").json()["results"]
    assert [t["subject"] for t in tickets] == ["Alpha printer"]
    assert MARKER in json.dumps(charlie_api.get("/v1/tickets").json())
    assert MARKER in json.dumps(charlie_api.get(f"/v1/tickets?q={MARKER}").json())
    assert MARKER in json.dumps(charlie_api.get("/v1/export/tickets").json())


def test_a_search_for_another_workspaces_comment_finds_nothing(
    world: World, client_for: Any
) -> None:
    response = client_for(world.alice).get("/v1/tickets", {"q": f"{MARKER} reply"})
    assert response.json()["results"] == []
    # By number: #n of A, never B's #n.
    response = client_for(world.alice).get("/v1/tickets", {"q": f"#{world.a_ticket.number}"})
    assert [t["subject"] for t in response.json()["results"]] == ["Alpha printer"]


def test_view_counts_count_the_callers_workspace_only(world: World, client_for: Any) -> None:
    everything = ticket_services.saved_view_create(
        workspace=world.a, agent=world.alice, name="Everything", filters={}
    )
    searched = ticket_services.saved_view_create(
        workspace=world.a, agent=world.alice, name="Searched", filters={"q": MARKER}
    )
    api = client_for(world.alice)

    counts = {v["name"]: v["count"] for v in api.get("/v1/views").json()["results"]}
    assert counts == {"Everything": 1, "Searched": 0}
    assert api.get(f"/v1/views/{everything.pk}").json()["count"] == 1
    tickets = api.get(f"/v1/views/{everything.pk}/tickets").json()["results"]
    assert [t["subject"] for t in tickets] == ["Alpha printer"]
    assert api.get(f"/v1/views/{searched.pk}/tickets").json()["results"] == []
    # Charlie's shared view counts B's two live tickets, not A's.
    response = client_for(world.charlie).get(f"/v1/views/{world.b_view.pk}")
    assert response.json()["count"] == 2


def test_a_customers_and_companys_tickets_are_their_workspaces(
    world: World, client_for: Any
) -> None:
    api = client_for(world.alice)
    response = api.get(f"/v1/customers/{world.a_customer.pk}/tickets")
    assert [t["subject"] for t in response.json()["results"]] == ["Alpha printer"]
    assert not _leaks(response)


def test_bulk_changes_never_reach_another_workspaces_ticket(world: World, client_for: Any) -> None:
    before = snapshot(world.b)
    response = client_for(world.alice).post(
        "/v1/tickets/bulk",
        {"ids": [world.b_ticket.number], "changes": {"status": "closed"}},
        format="json",
    )
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert (result["number"], result["ok"]) == (world.b_ticket.number, False)
    assert result["error"]["code"] == "not_found"
    assert snapshot(world.b) == before
