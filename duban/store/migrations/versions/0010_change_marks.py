"""a count of the commits that changed tasks or the catalogue: what a kept page is keyed by

The administrator's home is kept per database snapshot (duban.engine.snapshots). Keyed by
`pg_current_snapshot()`, any commit at all made the next view compute it again: a note, an
upload, each mail delivered, each sign-in. `change_marks` holds one row whose count grows by
one at the commit of every transaction that changed what the page is computed from:

- on PostgreSQL a deferred constraint trigger on `tasks` (UPDATE), `organizations`,
  `org_tags`, `plans` and `obligations` (INSERT, UPDATE, DELETE) fires at commit; the first
  call of a transaction adds one and marks the transaction (a transaction-local setting), the
  rest return at once;
- tasks are inserted only by materialize, one INSERT per duty and period without a per-row
  trigger (see 0009); it adds one itself, as the last statement before it commits.

The row is locked from that update to the commit, so writers wait on each other only while
committing, and always take it last (after the audit chain's lock): no new deadlock. Two
snapshots that read the same count see the same tasks and catalogue. SQLite keeps no pages;
it gets the table, not the triggers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 18:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: (table, the changes that count)
WATCHED = (
    ("tasks", "UPDATE"),
    ("organizations", "INSERT OR UPDATE OR DELETE"),
    ("org_tags", "INSERT OR UPDATE OR DELETE"),
    ("plans", "INSERT OR UPDATE OR DELETE"),
    ("obligations", "INSERT OR UPDATE OR DELETE"),
)


def upgrade() -> None:
    op.create_table(
        "change_marks",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_marks")),
    )
    op.execute("INSERT INTO change_marks (id, n) VALUES (1, 0)")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION duban_mark_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF current_setting('duban.change_marked', true) IS DISTINCT FROM 'on' THEN
            UPDATE change_marks SET n = n + 1 WHERE id = 1;
            PERFORM set_config('duban.change_marked', 'on', true);
          END IF;
          RETURN NULL;
        END $$
        """
    )
    for table, events in WATCHED:
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_change_mark AFTER {events} ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION duban_mark_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _ in WATCHED:
            op.execute(f"DROP TRIGGER {table}_change_mark ON {table}")
        op.execute("DROP FUNCTION duban_mark_change()")
    op.drop_table("change_marks")
