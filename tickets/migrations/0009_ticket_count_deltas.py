# SQL built from table and column names of this code only; values are parameters.
# ruff: noqa: S608
"""Maintained inbox counts (issue #9): the delta table, the triggers that fill it, a backfill.

Every insert, deletion and key-changing update of ``tickets_ticket`` appends signed rows to
``tickets_ticketcountdelta`` (see ``tickets.counts``). The triggers are SQL, not Python
hooks, because tickets change through services, bulk ``.update()``s, the admin and
``SET NULL`` cascades alike. One version per database:

- PostgreSQL: inserts and deletions are counted once per statement from its transition
  table (a bulk insert or a workspace's deletion appends one row per key, not per ticket);
  updates per row, and only when the ``WHEN`` clause sees a key or ``deleted_at IS NULL``
  change — a reply's ``updated_at`` write does not even call the function.
- SQLite: row triggers with the same conditions.

The triggers are created before the backfill, in the same transaction on PostgreSQL
(``CREATE TRIGGER`` locks the table against writes until it commits), so no change falls
between them.
"""

import django.db.models.deletion
from django.db import migrations, models

from tickets.counts import rebuild_sql

DELTA_COLUMNS = "workspace_id, status, assignee_id, team_id, mailbox_id, n"
KEY_CHANGED = {
    "postgresql": (
        "OLD.workspace_id IS DISTINCT FROM NEW.workspace_id"
        " OR OLD.status IS DISTINCT FROM NEW.status"
        " OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id"
        " OR OLD.team_id IS DISTINCT FROM NEW.team_id"
        " OR OLD.mailbox_id IS DISTINCT FROM NEW.mailbox_id"
        " OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)"
    ),
    "sqlite": (
        "OLD.workspace_id IS NOT NEW.workspace_id"
        " OR OLD.status IS NOT NEW.status"
        " OR OLD.assignee_id IS NOT NEW.assignee_id"
        " OR OLD.team_id IS NOT NEW.team_id"
        " OR OLD.mailbox_id IS NOT NEW.mailbox_id"
        " OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)"
    ),
}


def _row(side: str, n: int) -> str:
    return (
        f"{side}.workspace_id, {side}.status, {side}.assignee_id, {side}.team_id,"
        f" {side}.mailbox_id, {n}"
    )


POSTGRESQL = [
    f"""
    CREATE FUNCTION tickets_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tickets_ticketcountdelta ({DELTA_COLUMNS})
        SELECT workspace_id, status, assignee_id, team_id, mailbox_id, COUNT(*)
        FROM inserted_rows WHERE deleted_at IS NULL
        GROUP BY workspace_id, status, assignee_id, team_id, mailbox_id;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION tickets_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tickets_ticketcountdelta ({DELTA_COLUMNS})
        SELECT workspace_id, status, assignee_id, team_id, mailbox_id, -COUNT(*)
        FROM deleted_rows WHERE deleted_at IS NULL
        GROUP BY workspace_id, status, assignee_id, team_id, mailbox_id;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION tickets_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.deleted_at IS NULL THEN
            INSERT INTO tickets_ticketcountdelta ({DELTA_COLUMNS}) VALUES ({_row("OLD", -1)});
        END IF;
        IF NEW.deleted_at IS NULL THEN
            INSERT INTO tickets_ticketcountdelta ({DELTA_COLUMNS}) VALUES ({_row("NEW", 1)});
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER tickets_ticket_count_insert AFTER INSERT ON tickets_ticket
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tickets_count_inserted()
    """,
    """
    CREATE TRIGGER tickets_ticket_count_delete AFTER DELETE ON tickets_ticket
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tickets_count_deleted()
    """,
    f"""
    CREATE TRIGGER tickets_ticket_count_update AFTER UPDATE ON tickets_ticket
    FOR EACH ROW WHEN ({KEY_CHANGED["postgresql"]})
    EXECUTE FUNCTION tickets_count_updated()
    """,
]

POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS tickets_ticket_count_insert ON tickets_ticket",
    "DROP TRIGGER IF EXISTS tickets_ticket_count_delete ON tickets_ticket",
    "DROP TRIGGER IF EXISTS tickets_ticket_count_update ON tickets_ticket",
    "DROP FUNCTION IF EXISTS tickets_count_inserted()",
    "DROP FUNCTION IF EXISTS tickets_count_deleted()",
    "DROP FUNCTION IF EXISTS tickets_count_updated()",
]

SQLITE = [
    f"""
    CREATE TRIGGER tickets_ticket_count_insert AFTER INSERT ON tickets_ticket
    FOR EACH ROW WHEN NEW.deleted_at IS NULL
    BEGIN
        INSERT INTO tickets_ticketcountdelta ({DELTA_COLUMNS}) VALUES ({_row("NEW", 1)});
    END
    """,
    f"""
    CREATE TRIGGER tickets_ticket_count_delete AFTER DELETE ON tickets_ticket
    FOR EACH ROW WHEN OLD.deleted_at IS NULL
    BEGIN
        INSERT INTO tickets_ticketcountdelta ({DELTA_COLUMNS}) VALUES ({_row("OLD", -1)});
    END
    """,
    f"""
    CREATE TRIGGER tickets_ticket_count_update AFTER UPDATE ON tickets_ticket
    FOR EACH ROW WHEN {KEY_CHANGED["sqlite"]}
    BEGIN
        INSERT INTO tickets_ticketcountdelta ({DELTA_COLUMNS})
        SELECT {_row("OLD", -1)} WHERE OLD.deleted_at IS NULL;
        INSERT INTO tickets_ticketcountdelta ({DELTA_COLUMNS})
        SELECT {_row("NEW", 1)} WHERE NEW.deleted_at IS NULL;
    END
    """,
]

SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS tickets_ticket_count_insert",
    "DROP TRIGGER IF EXISTS tickets_ticket_count_delete",
    "DROP TRIGGER IF EXISTS tickets_ticket_count_update",
]

TRIGGERS = {"postgresql": (POSTGRESQL, POSTGRESQL_REVERSE), "sqlite": (SQLITE, SQLITE_REVERSE)}


def _statements(vendor: str, index: int) -> list[str]:
    if vendor not in TRIGGERS:
        raise NotImplementedError(f"no ticket count triggers for {vendor}")
    return TRIGGERS[vendor][index]


def create_triggers_and_backfill(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for statement in _statements(vendor, 0) + rebuild_sql(vendor=vendor, one_workspace=False):
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor) -> None:
    for statement in _statements(schema_editor.connection.vendor, 1):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0008_ticket_search_document"),
        ("workspaces", "0003_alter_team_teams_webhook_url"),
    ]

    operations = [
        migrations.CreateModel(
            name="TicketCountDelta",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("new", "New"),
                            ("open", "Open"),
                            ("pending", "Pending (waiting on customer)"),
                            ("on_hold", "On hold"),
                            ("resolved", "Resolved"),
                            ("closed", "Closed"),
                        ],
                        max_length=10,
                    ),
                ),
                ("assignee_id", models.BigIntegerField(blank=True, null=True)),
                ("team_id", models.BigIntegerField(blank=True, null=True)),
                ("mailbox_id", models.BigIntegerField(blank=True, null=True)),
                ("n", models.IntegerField()),
                (
                    "workspace",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "ordering": ["id"],
                "abstract": False,
            },
        ),
        migrations.RunPython(create_triggers_and_backfill, drop_triggers),
    ]
