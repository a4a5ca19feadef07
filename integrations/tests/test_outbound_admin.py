"""The admin lists every email we send and can send failed ones again."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.models import OutboundEmail, OutboundEmailStatus
from workspaces.models import Agent

pytestmark = pytest.mark.django_db


def outbound(ticket, status: str, message_id: str) -> OutboundEmail:
    return OutboundEmail.objects.create(
        workspace_id=ticket.workspace_id,
        ticket=ticket,
        message_id=message_id,
        to_addresses=["customer@example.com"],
        status=status,
        attempts=6,
        last_error="550 mailbox unavailable",
    )


@pytest.fixture
def staff_alice(alice: Agent) -> Agent:
    alice.user.is_staff = True
    alice.user.save(update_fields=["is_staff"])
    return alice


def test_retry_now_requeues_only_failed_rows_of_the_admins_workspace(
    client, staff_alice, ticket_a, ticket_b, django_capture_on_commit_callbacks
) -> None:
    failed = outbound(ticket_a, OutboundEmailStatus.FAILED, "a1@enque.test")
    sent = outbound(ticket_a, OutboundEmailStatus.SENT, "a2@enque.test")
    foreign = outbound(ticket_b, OutboundEmailStatus.FAILED, "b1@enque.test")
    client.force_login(staff_alice.user)
    changelist = reverse("admin:integrations_outboundemail_changelist")

    page = client.get(changelist)
    assert page.status_code == 200
    assert "550 mailbox unavailable" in page.content.decode()
    assert "b1@enque.test" not in page.content.decode()

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            changelist,
            {"action": "retry_now", "_selected_action": [failed.pk, sent.pk, foreign.pk]},
            follow=True,
        )
    assert response.status_code == 200
    failed.refresh_from_db()
    sent.refresh_from_db()
    foreign.refresh_from_db()
    assert (failed.status, failed.attempts) == (OutboundEmailStatus.PENDING, 0)
    assert failed.next_attempt_at is not None
    assert sent.status == OutboundEmailStatus.SENT
    # Another workspace's row is outside the admin's queryset: untouched.
    assert foreign.status == OutboundEmailStatus.FAILED
    assert len(callbacks) == 1
