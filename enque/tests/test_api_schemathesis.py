"""A schemathesis run over ``/v1``: the OpenAPI schema is fetched from the app itself and
every operation is called with generated requests, valid and invalid.

Each answer must be no 5xx, a documented status code, the documented content type and
headers, and a body matching the documented schema. The calls go in-process to the WSGI
app, signed in as the owner of a seeded workspace, and a path's ``{id}``/``{number}`` is
pointed at that workspace's real object (an invalid one is sent as generated), so the
generated bodies reach the views and services instead of stopping at a 404.

Per operation: the examples written in the schema, the coverage phase (boundary values of
each parameter and field, missing required ones, methods the path does not take), then
``MAX_EXAMPLES`` random requests. Bounded for CI (about a minute for the whole API):
deterministic (a fixed seed, so a failure reproduces), no shrinking, no deadline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from enque.api.authentication import issue_tokens
from enque.tests.factories import CannedReplyFactory, CategoryFactory, TagFactory, UserFactory
from enque.wsgi import application
from tickets import services as ticket_services
from tickets.actors import Actor
from tickets.tests.api_support import use_memory_storage
from workspaces import services as workspace_services
from workspaces.models import Agent, AgentRole

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# Random requests per operation, after the examples and the coverage phase.
MAX_EXAMPLES = 5

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20240501,
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": True},
            "fuzzing": {"enabled": True},
            "coverage": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
# What a server puts in every request's environ (rate limits key on the client address).
ENVIRON = {"REMOTE_ADDR": "127.0.0.1"}
schema = schemathesis.openapi.from_wsgi(
    "/v1/schema", application, config=CONFIG, environ_overrides=ENVIRON
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def in_process(settings: Any) -> Iterator[None]:
    """The WSGI handler as the test client runs it: inside the test's transaction."""
    use_memory_storage(settings)
    # Hundreds of calls by one agent in a minute: the limits are tested elsewhere.
    settings.RATELIMIT_ENABLE = False
    # Django closes "old" connections around each request, which would end the test's
    # transaction; its own test client disconnects these too.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(in_process: None) -> dict[str, Any]:
    """A workspace with one object of every kind, and its owner's token."""
    owner = UserFactory(email="owner@seeded.test", name="Olga Owner")
    workspace = workspace_services.workspace_create(name="Seeded", owner=owner)
    owner_agent = Agent.objects.get(workspace=workspace, user=owner)
    actor = Actor.for_agent(owner_agent)
    agent = workspace_services.agent_add(
        workspace=workspace,
        user=workspace_services.user_create(email="amy@seeded.test", name="Amy Agent"),
        role=AgentRole.AGENT,
    )
    company = workspace_services.company_create(
        workspace=workspace, name="Initech", domains=["initech.test"]
    )
    customer = workspace_services.customer_create(
        workspace=workspace, actor=owner_agent, email="peter@initech.test", name="Peter"
    )
    team = workspace_services.team_create(workspace=workspace, name="Support", members=[agent])
    category = CategoryFactory(workspace=workspace, name="Billing")
    tag = TagFactory(workspace=workspace, name="vip")
    canned = CannedReplyFactory(workspace=workspace, title="Thanks", category=category)
    attachment = ticket_services.attachment_upload(
        workspace=workspace,
        actor=actor,
        file=SimpleUploadedFile("shot.png", PNG, content_type="image/png"),
    )
    tickets = [
        ticket_services.ticket_create(
            workspace=workspace,
            actor=Actor.for_customer(customer),
            subject=f"TPS report {n}",
            customer=customer,
            body_text="The cover sheet is missing.",
            channel="email",
            tags=[tag.name],
        )
        for n in range(3)
    ]
    ticket_services.comment_create(
        ticket=tickets[0], actor=actor, body_text="On it.", attachments=[attachment]
    )
    scheduled = ticket_services.comment_schedule(
        ticket=tickets[0],
        actor=actor,
        send_at=timezone.now() + timedelta(days=1),
        body_text="Any news?",
    )
    view = ticket_services.saved_view_create(
        workspace=workspace, agent=owner_agent, name="Open", filters={"status": ["open"]}
    )
    objects = {
        "workspaces": workspace.pk,
        "agents": agent.pk,
        "teams": team.pk,
        "customers": customer.pk,
        "companies": company.pk,
        "categories": category.pk,
        "tags": tag.pk,
        "canned-replies": canned.pk,
        "tickets": tickets[1].number,
        "scheduled-comments": scheduled.pk,
        "views": view.pk,
        "attachments": attachment.pk,
    }
    return {"token": issue_tokens(owner_agent)["access"], "objects": objects}


def point_at_real_objects(case: Any, objects: dict[str, int]) -> None:
    """``/v1/<kind>/{id}``: the seeded object of that kind, unless the generated value is
    not an id at all (a negative case for the path itself)."""
    kind = case.operation.path.split("/")[2]
    for name, value in list((case.path_parameters or {}).items()):
        if kind in objects and re.fullmatch(r"[0-9]+", str(value)):
            case.path_parameters[name] = str(objects[kind])


@schema.parametrize()
# The seeded workspace is shared by an operation's examples on purpose (one transaction).
@hypothesis.settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_api_answers_as_documented(case: Any, seeded: dict[str, Any]) -> None:
    point_at_real_objects(case, seeded["objects"])
    case.call_and_validate(
        headers={"Authorization": f"Bearer {seeded['token']}"},
        checks=CHECKS,
        environ_overrides=ENVIRON,
    )


def test_every_operation_is_run() -> None:
    # The schema as loaded covers the API, so the parametrized test above does too.
    operations = {
        f"{op.method.upper()} {op.path}" for op in (r.ok() for r in schema.get_all_operations())
    }
    assert len(operations) >= 60
    assert {"POST /v1/tickets", "GET /v1/tickets", "POST /v1/attachments"} <= operations
