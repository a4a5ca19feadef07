"""Each ticket's search document (tickets/search.py): kept true by the services that write
the thread, bounded, never loaded with a list, and the index ``q=`` searches through."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tickets import search, selectors
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import comment_create, ticket_merge, ticket_update
from tickets.tests.api_support import write_in
from workspaces.models import Agent, Customer, Workspace


@pytest.fixture
def alice_api(client_for: Any, alice: Agent) -> APIClient:
    return client_for(alice)


def found(api: APIClient, q: str) -> list[int]:
    response = api.get("/v1/tickets", {"q": q})
    assert response.status_code == 200, response.json()
    return [item["number"] for item in response.json()["results"]]


def test_a_reply_makes_its_words_findable(
    alice_api: APIClient, alice: Agent, customer_a: Customer
) -> None:
    ticket = write_in(customer_a, "Printer jammed", body_text="Paper stuck in tray two")
    assert found(alice_api, "toner") == []

    comment_create(ticket=ticket, actor=Actor.for_agent(alice), body_text="Try a new toner")
    comment_create(
        ticket=ticket, actor=Actor.for_agent(alice), body_text="Escalated", internal=True
    )

    assert found(alice_api, "toner") == [ticket.number]
    assert found(alice_api, "escalated printer") == [ticket.number]
    # Words of the first message and of the subject are still there.
    assert found(alice_api, "tray jammed") == [ticket.number]


def test_a_subject_change_replaces_the_old_subjects_words(
    alice_api: APIClient, alice: Agent, customer_a: Customer
) -> None:
    ticket = write_in(customer_a, "Printer jammed", body_text="Paper stuck")
    comment_create(ticket=ticket, actor=Actor.for_agent(alice), body_text="Sending a technician")

    ticket_update(ticket=ticket, actor=Actor.for_agent(alice), subject="Scanner offline")

    assert found(alice_api, "scanner") == [ticket.number]
    assert found(alice_api, "jammed") == []
    assert found(alice_api, "technician paper") == [ticket.number]


def test_a_merge_moves_the_words_with_the_thread(
    alice_api: APIClient, alice: Agent, customer_a: Customer
) -> None:
    source = write_in(customer_a, "Invoice question", body_text="Where is my quittance")
    target = write_in(customer_a, "Billing", body_text="Card declined")

    ticket_merge(source=source, target=target, actor=Actor.for_agent(alice))

    assert found(alice_api, "quittance") == [target.number]
    # The source (closed, pointing at the target) keeps its own subject.
    assert source.number in found(alice_api, "invoice")


def test_a_later_save_of_a_new_ticket_keeps_appended_words(
    alice_api: APIClient, alice: Agent, customer_a: Customer
) -> None:
    ticket = write_in(customer_a, "Printer jammed", body_text="Paper stuck")
    comment_create(ticket=ticket, actor=Actor.for_agent(alice), body_text="Replaced the roller")
    # A full save of the instance ticket_create returned must not rewrite the document.
    ticket.save()

    assert found(alice_api, "roller") == [ticket.number]


def test_lists_never_load_the_document(workspace_a: Workspace, customer_a: Customer) -> None:
    write_in(customer_a, "Printer jammed", body_text="Paper stuck")
    listed = selectors.ticket_list(workspace=workspace_a).first()
    assert "search_document" in listed.get_deferred_fields()
    related = listed.comments.first().ticket
    assert "search_document" in related.get_deferred_fields()


def random_words(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    total = 0
    while total < chars:
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(6, 12)))
        words.append(word)
        total += len(word) + 1
    return " ".join(words)


@pytest.mark.postgres_only
def test_the_document_stops_growing_at_its_bound_without_failing_a_reply(
    alice_api: APIClient, alice: Agent, customer_a: Customer
) -> None:
    rng = random.Random(7)
    ticket = write_in(customer_a, "Log dump", body_text="First lines")
    size = 0
    while size < search.MAX_DOCUMENT_BYTES:
        comment_create(
            ticket=ticket,
            actor=Actor.for_agent(alice),
            body_text=random_words(rng, search.COMMENT_CHARS),
        )
        size = document_bytes(ticket)

    late = comment_create(
        ticket=ticket, actor=Actor.for_agent(alice), body_text="zyzzyvaword after the bound"
    )

    assert late.pk is not None
    assert document_bytes(ticket) == size
    assert found(alice_api, "zyzzyvaword") == []
    assert found(alice_api, "first lines") == [ticket.number]
    # A rebuild reads a bounded prefix of the thread, so it cannot fail either.
    search.rebuild([ticket.pk])
    assert 0 < document_bytes(ticket) <= size


def document_bytes(ticket: Ticket) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT octet_length(search_document::text) FROM tickets_ticket WHERE id = %s",
            [ticket.pk],
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres_only
def test_a_search_can_use_the_documents_gin_index(workspace_a: Workspace) -> None:
    match = selectors.ticket_search_q("printer fire", workspace=workspace_a, resolve_rare=False)
    sql, params = Ticket.objects.filter(match).values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        # With sequential scans priced out, a plan on the match alone shows whether the
        # index can serve it.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "ticket_search_document_idx" in plan, plan


@pytest.mark.postgres_only
def test_the_migration_backfill_builds_every_document(
    alice_api: APIClient, customer_a: Customer
) -> None:
    ticket = write_in(customer_a, "Printer jammed", body_text="Paper stuck")
    Ticket.objects.filter(pk=ticket.pk).update(search_document=None)
    assert found(alice_api, "paper") == []

    with connection.cursor() as cursor:
        cursor.execute(search.rebuild_all_sql())

    assert found(alice_api, "paper") == [ticket.number]


@pytest.mark.postgres_only
@pytest.mark.parametrize("rare_limit", [1000, 1])
def test_rare_and_frequent_searches_find_the_same_tickets(
    rare_limit: int,
    monkeypatch: pytest.MonkeyPatch,
    alice_api: APIClient,
    customer_a: Customer,
    customer_b: Customer,
) -> None:
    # Over the limit, the search stays a condition on the list; under it, the matching
    # tickets are looked up first. Either way: the same tickets, this workspace only.
    monkeypatch.setattr(selectors, "RARE_SEARCH_LIMIT", rare_limit)
    first = write_in(customer_a, "Printer jammed", body_text="Paper stuck")
    second = write_in(customer_a, "Printer offline", body_text="No network")
    write_in(customer_a, "Invoice", body_text="Wrong amount")
    write_in(customer_b, "Printer jammed", body_text="Paper stuck")

    assert found(alice_api, "printer") == [second.number, first.number]
    assert found(alice_api, "print paper") == [first.number]
    assert found(alice_api, "nowhere") == []
    assert found(alice_api, f"#{first.number}") == [first.number]


@pytest.mark.postgres_only
def test_matching_ids_stops_at_its_limit(workspace_a: Workspace, customer_a: Customer) -> None:
    tickets = [write_in(customer_a, f"Printer {n}", body_text="Paper") for n in range(3)]

    assert len(search.matching_ids(workspace_a.pk, "printer:*", 2)) == 2
    assert sorted(search.matching_ids(workspace_a.pk, "printer:*", 10)) == sorted(
        t.pk for t in tickets
    )
    assert search.matching_ids(workspace_a.pk, "scanner:*", 10) == []
