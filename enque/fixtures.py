"""The shared tenant trio, loaded by the root conftest as a pytest plugin.

Alice is the admin of workspace A, Bob an agent in A, Charlie the admin of workspace B:
every endpoint and consumer test includes "Charlie gets 404".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from enque.testing import S3Server, moto_s3_server
from enque.tests.factories import AgentFactory, CustomerFactory, UserFactory
from tickets.actors import Actor
from tickets.models import Ticket
from workspaces.models import Agent, AgentRole, Customer, Workspace
from workspaces.services import workspace_create


@pytest.fixture
def workspace_a(db: None) -> Workspace:
    owner = UserFactory(email="olivia@a.test", name="Olivia Owner")
    return workspace_create(name="Acme Support", owner=owner)


@pytest.fixture
def workspace_b(db: None) -> Workspace:
    owner = UserFactory(email="oscar@b.test", name="Oscar Owner")
    return workspace_create(name="Globex Help", owner=owner)


@pytest.fixture
def alice(workspace_a: Workspace) -> Agent:
    user = UserFactory(email="alice@a.test", name="Alice Admin")
    return AgentFactory(workspace=workspace_a, user=user, role=AgentRole.ADMIN)


@pytest.fixture
def bob(workspace_a: Workspace) -> Agent:
    user = UserFactory(email="bob@a.test", name="Bob Agent")
    return AgentFactory(workspace=workspace_a, user=user, role=AgentRole.AGENT)


@pytest.fixture
def charlie(workspace_b: Workspace) -> Agent:
    user = UserFactory(email="charlie@b.test", name="Charlie Admin")
    return AgentFactory(workspace=workspace_b, user=user, role=AgentRole.ADMIN)


@pytest.fixture
def customer_a(workspace_a: Workspace) -> Customer:
    return CustomerFactory(
        workspace=workspace_a, email="carol@customer.test", name="Carol Customer"
    )


@pytest.fixture
def customer_b(workspace_b: Workspace) -> Customer:
    return CustomerFactory(workspace=workspace_b, email="dave@other.test", name="Dave Customer")


@pytest.fixture
def ticket_a(workspace_a: Workspace, customer_a: Customer) -> Ticket:
    from tickets.services import ticket_create

    return ticket_create(
        workspace=workspace_a,
        actor=Actor.for_customer(customer_a),
        subject="Printer on fire",
        body_text="Our printer is on fire again. Please help.",
        customer=customer_a,
        channel="email",
    )


@pytest.fixture
def ticket_b(workspace_b: Workspace, customer_b: Customer) -> Ticket:
    from tickets.services import ticket_create

    return ticket_create(
        workspace=workspace_b,
        actor=Actor.for_customer(customer_b),
        subject="Cannot log in",
        body_text="The login page says my password is wrong.",
        customer=customer_b,
        channel="email",
    )


# --- API clients --------------------------------------------------------------------------


@pytest.fixture
def api_client() -> APIClient:
    """A /v1 client without a token."""
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[Agent], APIClient]:
    """``client_for(alice)``: a /v1 client signed in as that agent (a fresh token pair)."""
    from enque.api.authentication import issue_tokens

    def make(agent: Agent) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(agent)['access']}")
        return client

    return make


# --- S3 (moto) ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1, one for the whole session (started on first use)."""
    with moto_s3_server() as server:
        yield server


@pytest.fixture
def s3_bucket(moto_s3: S3Server, settings: Any) -> str:
    """A fresh private bucket on moto, made the default storage (as settings do when
    AWS_STORAGE_BUCKET_NAME is set)."""
    bucket = moto_s3.create_bucket()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "enque.storage.PrivateS3Storage",
            "OPTIONS": moto_s3.storage_options(bucket),
        },
    }
    return bucket
