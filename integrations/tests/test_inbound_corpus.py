"""The committed corpus (integrations/tests/corpus) gives the tickets, threads, customers
and attachments its manifest expects, and ingesting it twice more changes nothing.

The corpus is ingested in file order into support@acme.test of workspace A, whose company
Initech owns initech.test; Alice and Bob are its agents. See corpus/generate.py for what
each manifest key means.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from enque.tests.factories import CompanyFactory, TeamFactory
from integrations.inbound import ingest_raw_email
from integrations.models import EmailTicketMapping, InboundEmail, MailboxConnection
from tickets.actors import Actor
from tickets.models import Comment, Ticket, TicketAttachment, TicketEvent
from tickets.services import ticket_merge, ticket_set_status
from workspaces.models import Agent, CompanyDomain, Customer, Workspace

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("corpus_generate", CORPUS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    for name, value in MANIFEST["settings"].items():
        setattr(settings, name, value)


@pytest.fixture
def mailbox(workspace_a: Workspace, alice: Agent, bob: Agent) -> MailboxConnection:
    company = CompanyFactory(workspace=workspace_a, name="Initech")
    CompanyDomain.objects.create(workspace=workspace_a, company=company, domain="initech.test")
    return MailboxConnection.objects.create(
        workspace=workspace_a,
        provider="imap",
        email_address=MANIFEST["mailbox"],
        default_team=TeamFactory(workspace=workspace_a, name="Support"),
        default_priority="high",
    )


def test_the_committed_corpus_is_what_the_generator_writes(tmp_path: Path) -> None:
    written = _generator().write(tmp_path)
    assert len(written) - 1 >= 60
    committed = sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".eml", ".json"))
    assert committed == sorted(p.name for p in written)
    for path in written:
        assert path.read_bytes() == (CORPUS / path.name).read_bytes(), path.name


def _snapshot(workspace: Workspace) -> dict[str, Any]:
    return {
        "tickets": Ticket.objects.for_workspace(workspace).count(),
        "comments": Comment.objects.for_workspace(workspace).count(),
        "events": TicketEvent.objects.for_workspace(workspace).count(),
        "customers": Customer.objects.for_workspace(workspace).count(),
        "attachments": TicketAttachment.objects.for_workspace(workspace).count(),
        "mappings": EmailTicketMapping.objects.for_workspace(workspace).count(),
        "inbound": list(
            InboundEmail.objects.for_workspace(workspace)
            .order_by("pk")
            .values_list("pk", "status", "reason", "ticket_id", "comment_id", "attempts")
        ),
    }


def _before(action: list[str], tickets: dict[str, Ticket], alice: Agent) -> None:
    actor = Actor.for_agent(alice)
    if action[0] in ("resolve", "close"):
        status = "resolved" if action[0] == "resolve" else "closed"
        ticket_set_status(ticket=tickets[action[1]], actor=actor, status=status)
    elif action[0] == "merge":
        ticket_merge(source=tickets[action[1]], target=tickets[action[2]], actor=actor)
    else:
        raise AssertionError(f"unknown action {action}")


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.tickets: dict[str, Ticket] = {}
        self.rows: dict[str, InboundEmail] = {}

    def check(self, entry: dict[str, Any], inbound: InboundEmail, mailbox: MailboxConnection):
        name = entry["file"]

        def expect(condition: bool, what: str) -> None:
            if not condition:
                self.problems.append(f"{name}: {what}")

        self.rows[name] = inbound
        expect(
            inbound.status == entry["status"],
            f"status {inbound.status} ≠ {entry['status']} ({inbound.reason}) {inbound.error[:400]}",
        )
        if "reason" in entry:
            expect(inbound.reason.startswith(entry["reason"]), f"reason {inbound.reason!r}")
        if "duplicate_of" in entry:
            original = self.rows[entry["duplicate_of"]]
            expect(inbound.pk == original.pk and inbound.was_duplicate, "not deduplicated")
        if "subject" in entry:
            expect(inbound.subject == entry["subject"], f"subject {inbound.subject!r}")
        if "reply_to" in entry:
            expect(inbound.reply_to == entry["reply_to"], f"reply_to {inbound.reply_to!r}")
        if "message_id_prefix" in entry:
            expect(inbound.message_id.startswith(entry["message_id_prefix"]), "message id")
        if entry["status"] != "processed" or "duplicate_of" in entry:
            expect(inbound.ticket_id is None or "duplicate_of" in entry, "has a ticket")
            return
        ticket = inbound.ticket
        comment = inbound.comment
        if ticket is None or comment is None:
            expect(False, "no ticket or comment")
            return
        ticket.refresh_from_db()
        target = entry.get("ticket")
        if target == "new":
            self.tickets[name] = ticket
            first = Comment.objects.filter(ticket=ticket).order_by("pk").first()
            expect(first == comment, "the message is not the ticket's first comment")
            expect(
                (ticket.channel, ticket.mailbox_id, ticket.priority, ticket.team.name)
                == ("email", mailbox.pk, "high", "Support"),
                "mailbox defaults not applied",
            )
        elif target:
            expect(ticket.pk == self.tickets[target].pk, f"landed on #{ticket.number}")
        expect(
            EmailTicketMapping.objects.filter(message_id=inbound.message_id, ticket=ticket).exists()
            or entry.get("reason") == "bounce",
            "no mapping",
        )
        person = ticket.customer if target == "new" else comment.author_customer
        if "customer" in entry:
            expect(person is not None and person.email == entry["customer"], f"customer {person}")
        if "customer_name" in entry:
            expect(person is not None and person.name == entry["customer_name"], f"name {person}")
        if "company" in entry:
            company = person.company.name if person and person.company else None
            expect(company == entry["company"], f"company {company}")
        if "ticket_subject" in entry:
            expect(ticket.subject == entry["ticket_subject"], f"ticket subject {ticket.subject!r}")
        attachments = list(TicketAttachment.objects.filter(comment=comment))
        if "attachments" in entry:
            expect(len(attachments) == entry["attachments"], f"{len(attachments)} attachments")
        if "inline" in entry:
            inline = sum(a.is_inline for a in attachments)
            expect(inline == entry["inline"], f"{inline} inline")
        if "filenames" in entry:
            names = sorted(a.filename for a in attachments)
            expect(names == entry["filenames"], f"filenames {names}")
        for attachment in attachments:
            expect(
                attachment.sha256 and attachment.size == attachment.file.size,
                f"attachment {attachment.filename} not stored",
            )
        for text in entry.get("body_contains", []):
            expect(text in comment.body_text, f"body lacks {text!r}: {comment.body_text[:300]!r}")
        for text in entry.get("body_excludes", []):
            expect(text not in comment.body_text, f"body has {text!r}: {comment.body_text!r}")
        for text in entry.get("html_contains", []):
            expect(text in comment.body_html, f"html lacks {text!r}: {comment.body_html[:300]!r}")
        for text in entry.get("html_excludes", []):
            expect(text not in comment.body_html, f"html has {text!r}")
        for text in entry.get("original_contains", []):
            expect(text in ticket.body.text, f"original lacks {text!r}")
        if entry.get("note_contains"):
            notes = " ".join(
                Comment.objects.filter(ticket=ticket, is_internal=True).values_list(
                    "body_text", flat=True
                )
            )
            for text in entry["note_contains"]:
                expect(text in notes, f"no note with {text!r}: {notes[:500]!r}")
        if "internal" in entry:
            expect(comment.is_internal == entry["internal"], "internal")
        if "ticket_status" in entry:
            expect(ticket.status == entry["ticket_status"], f"ticket status {ticket.status}")
        if "auto_reply" in entry:
            expect(inbound.is_auto_reply == entry["auto_reply"], "auto-reply flag")
        if "bounced" in entry:
            customer = Customer.objects.get(workspace=ticket.workspace, email=entry["bounced"])
            expect(customer.email_bounced_at is not None, "recipient not flagged")


def test_corpus_gives_the_expected_outcomes_and_a_second_ingest_changes_nothing(
    mailbox: MailboxConnection, alice: Agent
) -> None:
    messages = MANIFEST["messages"]
    assert len(messages) >= 60
    checker = _Checker()
    for entry in messages:
        for action in entry.get("before", []):
            _before(action, checker.tickets, alice)
        raw = (CORPUS / entry["file"]).read_bytes()
        inbound = ingest_raw_email(mailbox=mailbox, raw=raw)
        checker.check(entry, inbound, mailbox)
    assert not checker.problems, "\n".join(checker.problems)

    workspace = mailbox.workspace
    before = _snapshot(workspace)
    for _ in range(2):
        for entry in messages:
            again = ingest_raw_email(mailbox=mailbox, raw=(CORPUS / entry["file"]).read_bytes())
            assert again.was_duplicate, entry["file"]
    assert _snapshot(workspace) == before
