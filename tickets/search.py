"""Each ticket's search document: one stored ``tsvector`` of its subject and thread.

``q=`` searches a ticket's subject and every comment (internal notes included: only agents
search). Matching comments and mapping them back to tickets at query time cannot be made
fast for a common word in a big workspace: the comments' index yields millions of rows that
must all be read before the 25 newest tickets are known. One document per ticket turns the
search into a plain condition on the ticket row, which PostgreSQL can answer either through
the document's GIN index (a rare word) or by walking the list's own index and checking the
first rows (a common word); its statistics tell it which.

On PostgreSQL the document is ``strip(to_tsvector('simple', ...))``: no stemming (names,
codes and error messages are found as typed) and no positions (a search is a set of words,
each matched as a prefix). It is kept up to date by the services that write the thread:
``ticket_create`` sets it, ``comment_create`` appends to it, and a subject change or a merge
rebuilds it. SQLite has no ``tsvector``: its column stays empty and search falls back to
``LIKE`` over the same text (``tickets.selectors.ticket_search_q``).

Bounds: PostgreSQL refuses a ``tsvector`` over 1 MB, and a failing update would make adding
a reply fail. Each appended comment contributes its first ``COMMENT_CHARS`` characters, and
appending stops once the document's text form reaches ``MAX_DOCUMENT_BYTES``; a rebuild
reads the first ``REBUILD_CHARS`` characters of the subject and thread. Even in the worst
case (every word new, four bytes a character) these stay under the limit.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.postgres.search import SearchVectorField
from django.db import connection
from django.db.models import Func, Value

COMMENT_CHARS = 50_000
REBUILD_CHARS = 100_000
MAX_DOCUMENT_BYTES = 400_000


def enabled() -> bool:
    return connection.vendor == "postgresql"


class _Document(Func):
    template = f"strip(to_tsvector('simple'::regconfig, LEFT(%(expressions)s, {REBUILD_CHARS})))"
    output_field = SearchVectorField()


def initial_document(subject: str, body_text: str) -> _Document | None:
    """The document of a new ticket, as an expression for its INSERT (no extra statement);
    ``None`` where search documents are not kept."""
    if not enabled():
        return None
    return _Document(Value(f"{subject} {body_text}"))


def append(ticket_id: int, text: str) -> None:
    """Add a new comment's words to its ticket's document (one UPDATE)."""
    if not enabled() or not text.strip():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE tickets_ticket SET search_document = CASE
                WHEN search_document IS NULL
                    THEN strip(to_tsvector('simple'::regconfig, LEFT(%s, {COMMENT_CHARS})))
                WHEN octet_length(search_document::text) < {MAX_DOCUMENT_BYTES}
                    THEN search_document
                         || strip(to_tsvector('simple'::regconfig, LEFT(%s, {COMMENT_CHARS})))
                ELSE search_document
            END
            WHERE id = %s
            """,  # noqa: S608
            [text, text, ticket_id],
        )


# The subject, then the thread in order, as one text.
# (Only this module's integer constants are interpolated into these statements.)
_REBUILD_SQL = f"""
    UPDATE tickets_ticket AS t SET search_document = strip(to_tsvector(
        'simple'::regconfig,
        LEFT(
            COALESCE(t.subject, '') || ' ' || COALESCE(
                (SELECT string_agg(LEFT(c.body_text, {COMMENT_CHARS}), ' ' ORDER BY c.id)
                 FROM tickets_comment AS c WHERE c.ticket_id = t.id),
                ''
            ),
            {REBUILD_CHARS}
        )
    ))
"""  # noqa: S608


def rebuild(ticket_ids: Iterable[int]) -> None:
    """Recompute the documents of some tickets from their subject and thread (after a
    subject change, or a merge that moved comments)."""
    ids = sorted(set(ticket_ids))
    if not enabled() or not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_REBUILD_SQL + " WHERE t.id = ANY(%s)", [ids])


def matching_ids(workspace_id: int, tsquery: str, limit: int) -> list[int]:
    """Up to ``limit`` ids of the workspace's tickets whose document matches ``tsquery``
    (``to_tsquery`` syntax), in no order.

    The match is planned without the limit (a ``MATERIALIZED`` CTE), so a word without
    statistics, estimated at 0.5% of the tickets, is looked up in the GIN index rather than
    by reading tickets until ``limit`` of them match, which for a word found nowhere meant
    reading all of them; the CTE is still read only as far as the limit, so a frequent word
    stops after the first ``limit`` matches of a sequential read.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH matches AS MATERIALIZED (
                SELECT id FROM tickets_ticket
                WHERE workspace_id = %s
                  AND search_document @@ to_tsquery('simple'::regconfig, %s)
            )
            SELECT id FROM matches LIMIT %s
            """,
            [workspace_id, tsquery, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def rebuild_all_sql() -> str:
    """The statement that (re)builds every ticket's document: the migration's backfill."""
    return _REBUILD_SQL
