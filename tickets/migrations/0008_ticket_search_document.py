"""Each ticket's search document (tickets/search.py) replaces searching the comments' index.

On PostgreSQL: the column is backfilled from every ticket's subject and thread, gets its GIN
index, and the subject and comment full-text indexes of 0004 go (nothing reads them any
more, and each reply paid to update the comments' one). Built ``CONCURRENTLY``, so the migration is not atomic. On SQLite
the column only exists: search there is ``LIKE`` over the text.
"""

import django.contrib.postgres.search
from django.db import migrations

from tickets.migrations._sql import PostgresOnlySQL
from tickets.search import rebuild_all_sql


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tickets", "0007_perf_assignee_team_list_indexes"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="ticket",
            options={"base_manager_name": "objects", "ordering": ["-updated_at", "-id"]},
        ),
        migrations.AddField(
            model_name="ticket",
            name="search_document",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        PostgresOnlySQL(sql=rebuild_all_sql(), reverse_sql=migrations.RunSQL.noop),
        PostgresOnlySQL(
            sql=(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS ticket_search_document_idx "
                "ON tickets_ticket USING gin (search_document)"
            ),
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS ticket_search_document_idx",
        ),
        PostgresOnlySQL(
            sql="DROP INDEX CONCURRENTLY IF EXISTS ticket_subject_fts_idx",
            reverse_sql=(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS ticket_subject_fts_idx "
                "ON tickets_ticket USING gin "
                "(to_tsvector('simple'::regconfig, COALESCE(subject, '')))"
            ),
        ),
        PostgresOnlySQL(
            sql="DROP INDEX CONCURRENTLY IF EXISTS comment_body_fts_idx",
            reverse_sql=(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS comment_body_fts_idx "
                "ON tickets_comment USING gin "
                "(to_tsvector('simple'::regconfig, COALESCE(LEFT(body_text, 100000), '')))"
            ),
        ),
    ]
