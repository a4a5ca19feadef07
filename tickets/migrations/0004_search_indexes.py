"""Full-text search over ticket subjects and comment bodies (GIN), on PostgreSQL only.

The indexed expressions are exactly what ``tickets.selectors`` renders for ``q=`` (see
``subject_search_vector`` / ``comment_search_vector``): PostgreSQL uses an expression index
only for a query with the same expression. Comment bodies are indexed on their first 100,000
characters, because ``to_tsvector`` refuses results over 1 MB and an index that fails would
make inserting a long email fail. SQLite has no GIN: its search falls back to ``LIKE``, and
these operations do nothing there.

Built ``CONCURRENTLY`` (so the migration is not atomic): a busy workspace keeps writing
while the indexes build.
"""

from django.db import migrations

from tickets.migrations._sql import PostgresOnlySQL


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tickets", "0003_saved_view_and_created_index"),
    ]

    operations = [
        PostgresOnlySQL(
            sql=(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS ticket_subject_fts_idx "
                "ON tickets_ticket USING gin "
                "(to_tsvector('simple'::regconfig, COALESCE(subject, '')))"
            ),
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS ticket_subject_fts_idx",
        ),
        PostgresOnlySQL(
            sql=(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS comment_body_fts_idx "
                "ON tickets_comment USING gin "
                "(to_tsvector('simple'::regconfig, COALESCE(LEFT(body_text, 100000), '')))"
            ),
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS comment_body_fts_idx",
        ),
    ]
