"""Microsoft 365 end to end: a message synced from (fake) Graph becomes a ticket, a reply
made through the API goes out through Graph ``sendMail`` as MIME with threading headers,
and the customer's answer, synced next, lands on the same ticket. Also through
``integrations.sync.sync_mailbox``: a revoked grant marks that mailbox "reconnect needed"
while another keeps syncing, and reconnecting brings it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from rest_framework.test import APIClient

from enque.celery import app as celery_app
from integrations.models import (
    EmailTicketMapping,
    MailboxConnection,
    MailDirection,
    OutboundEmail,
    OutboundEmailStatus,
    SyncStatus,
)
from integrations.sync import SyncOutcomeStatus, sync_mailbox
from integrations.tests.fake_microsoft import FakeMicrosoft, connect_mailbox, plain_message
from tickets.models import Comment, Ticket
from workspaces.models import Agent

pytestmark = pytest.mark.django_db

SUPPORT = "support@acme.test"
CAROL = "Carol Customer <carol@customer.test>"


@pytest.fixture(autouse=True)
def _memory_storage(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


@pytest.fixture(autouse=True)
def eager_tasks() -> Iterator[None]:
    """Tasks enqueued on commit run inline, as a worker would run them."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft.running(settings) as fake:
        fake.add_user(SUPPORT, name="Acme Support")
        yield fake


@pytest.fixture
def mailbox(fake: FakeMicrosoft, alice: Agent) -> MailboxConnection:
    return connect_mailbox(fake, admin=alice, user=fake.users[SUPPORT])


def test_mail_in_reply_out_and_the_answer_threads_back(
    fake: FakeMicrosoft,
    mailbox: MailboxConnection,
    alice: Agent,
    client_for: Callable[[Agent], APIClient],
    django_capture_on_commit_callbacks: Callable[..., AbstractContextManager],
) -> None:
    fake.deliver(
        SUPPORT,
        plain_message(
            "Printer on fire",
            sender=CAROL,
            message_id="<first@mail.customer.test>",
            body="Our printer is on fire.",
        ),
    )
    with django_capture_on_commit_callbacks(execute=True):
        outcome = sync_mailbox(mailbox.pk)
    assert (outcome.status, outcome.fetched) == (SyncOutcomeStatus.OK, 1)
    ticket = Ticket.objects.get(workspace=alice.workspace)
    assert ticket.subject == "Printer on fire"
    assert ticket.customer.email == "carol@customer.test"

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(
            f"/v1/tickets/{ticket.number}/reply",
            {"body": "Please unplug it and step back."},
            format="json",
        )
    assert response.status_code == 201, response.json()

    (sent,) = fake.sent
    message = sent.message
    row = OutboundEmail.objects.get(comment_id=response.json()["id"])
    assert row.status == OutboundEmailStatus.SENT
    assert message["Message-ID"] == f"<{row.message_id}>"
    assert message["In-Reply-To"] == "<first@mail.customer.test>"
    assert "<first@mail.customer.test>" in message["References"]
    assert message["To"].addresses[0].addr_spec == "carol@customer.test"
    assert "Please unplug it" in message.get_body(("plain",)).get_content()
    assert EmailTicketMapping.objects.filter(
        ticket=ticket, direction=MailDirection.OUTBOUND, message_id=row.message_id
    ).exists()

    # Carol answers with a new subject: only the threading headers tie it to the ticket.
    fake.deliver(
        SUPPORT,
        plain_message(
            "unplugged",
            sender=CAROL,
            message_id="<second@mail.customer.test>",
            in_reply_to=message["Message-ID"],
            body="Done, it stopped.",
        ),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_mailbox(mailbox.pk).fetched == 1
    assert Ticket.objects.filter(workspace=alice.workspace).count() == 1
    latest = Comment.objects.filter(ticket=ticket).order_by("-created_at", "-id").first()
    assert latest.body_text.startswith("Done, it stopped.")
    assert len(fake.sent) == 1


def test_a_revoked_mailbox_is_marked_reconnect_needed_while_another_keeps_syncing(
    fake: FakeMicrosoft, mailbox: MailboxConnection, alice: Agent
) -> None:
    fake.add_user("sales@acme.test")
    sales = connect_mailbox(fake, admin=alice, user=fake.users["sales@acme.test"])
    fake.revoke(SUPPORT)
    fake.deliver(SUPPORT, plain_message("Lost for now"))
    fake.deliver("sales@acme.test", plain_message("A lead", to="sales@acme.test"))

    support_outcome = sync_mailbox(mailbox.pk)
    sales_outcome = sync_mailbox(sales.pk)

    assert support_outcome.status == SyncOutcomeStatus.RECONNECT
    mailbox.refresh_from_db()
    assert mailbox.sync_status == SyncStatus.RECONNECT_NEEDED
    assert "invalid_grant" in mailbox.last_error
    assert (sales_outcome.status, sales_outcome.fetched) == (SyncOutcomeStatus.OK, 1)
    sales.refresh_from_db()
    assert sales.sync_status == SyncStatus.OK
    # Until an admin reconnects, the periodic sync leaves it alone.
    assert sync_mailbox(mailbox.pk).status == SyncOutcomeStatus.SKIPPED

    fake.revoked.clear()
    connect_mailbox(fake, admin=alice, user=fake.users[SUPPORT])
    mailbox.refresh_from_db()
    assert mailbox.sync_status == SyncStatus.IDLE and mailbox.last_error == ""
    assert sync_mailbox(mailbox.pk).fetched == 1
