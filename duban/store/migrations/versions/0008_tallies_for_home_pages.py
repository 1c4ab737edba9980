"""tallies of delivered tasks, kept by triggers; owed tasks indexed by due day and institution

The home pages and the quarterly circular show on-time rates by institution, by month over the
plan year and by quarter. Counting them from a million tasks on every page view is what this
avoids:

- `tally_duty_day` counts the delivered tasks (submitted or accepted) per duty, due day,
  state and lateness (the last submission at or after the due instant: is_late); a year of a
  province is a few thousand rows.
- `tally_org_month` counts them per due month, plan, institution, state and lateness.
- Triggers on `tasks` keep both up to date whoever changes a task (an action, an amendment,
  a bulk UPDATE): on PostgreSQL one set-based statement per UPDATE statement over its
  transition tables, on SQLite per row. Inserted tasks are open, so the INSERT trigger only
  fires for a task born delivered.
- What is owed (open, rejected) depends on the clock, so it is counted live, from a partial
  index holding the due instant, the due day, the institution and the duty: never the table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DONE = "('submitted', 'accepted')"
PENDING = "state IN ('open', 'rejected')"
LATE = "({r}.submitted_at IS NOT NULL AND {r}.submitted_at >= {r}.due_at)"
DUTY_KEY = "(due_date, obligation_id, state, late)"
ORG_KEY = "(month, plan_id, org_id, state, late)"


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _month(column: str) -> str:
    if _pg():
        return f"CAST(date_trunc('month', {column}) AS date)"
    return f"date({column}, 'start of month')"


def upgrade() -> None:
    op.create_table(
        "tally_duty_day",
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("obligation_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "due_date", "obligation_id", "state", "late", name=op.f("pk_tally_duty_day")
        ),
    )
    op.create_table(
        "tally_org_month",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "plan_id", "org_id", "state", "late", name=op.f("pk_tally_org_month")
        ),
    )
    op.create_index(
        "ix_tasks_pending_due_org",
        "tasks",
        ["due_at", "due_date", "org_id", "obligation_id"],
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )
    # what is already delivered
    op.execute(
        f"INSERT INTO tally_duty_day {DUTY_KEY[:-1]}, n) "
        f"SELECT due_date, obligation_id, state, {LATE.format(r='tasks')}, count(*) FROM tasks "
        f"WHERE state IN {DONE} GROUP BY 1, 2, 3, 4"
    )
    op.execute(
        f"INSERT INTO tally_org_month {ORG_KEY[:-1]}, n) "
        f"SELECT {_month('t.due_date')}, o.plan_id, t.org_id, t.state, {LATE.format(r='t')}, "
        "count(*) FROM tasks t JOIN obligations o ON o.id = t.obligation_id "
        f"WHERE t.state IN {DONE} GROUP BY 1, 2, 3, 4, 5"
    )
    if _pg():
        _pg_triggers()
    else:
        _sqlite_triggers()


def _pg_triggers() -> None:
    def add(rows: str, sign: str) -> str:
        return (
            f"SELECT r.due_date, r.obligation_id, o.plan_id, r.org_id, r.state, "
            f"{LATE.format(r='r')} AS late, {sign}1 AS d "
            f"FROM {rows} r JOIN obligations o ON o.id = r.obligation_id "
            f"WHERE r.state IN {DONE}"
        )

    def upsert(source: str) -> str:
        # rows in key order, so two transactions lock the tallies in the same order
        return (
            f"INSERT INTO tally_duty_day AS t {DUTY_KEY[:-1]}, n) "
            f"SELECT due_date, obligation_id, state, late, sum(d) FROM ({source}) c "
            "GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4 "
            f"ON CONFLICT {DUTY_KEY} DO UPDATE SET n = t.n + excluded.n; "
            f"INSERT INTO tally_org_month AS t {ORG_KEY[:-1]}, n) "
            f"SELECT {_month('due_date')}, plan_id, org_id, state, late, sum(d) "
            f"FROM ({source}) c GROUP BY 1, 2, 3, 4, 5 HAVING sum(d) <> 0 "
            f"ORDER BY 1, 2, 3, 4, 5 ON CONFLICT {ORG_KEY} DO UPDATE SET n = t.n + excluded.n;"
        )

    changed = f"{add('old_rows', '-')} UNION ALL {add('new_rows', '+')}"
    op.execute(
        "CREATE FUNCTION duban_tally_update() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {upsert(changed)} RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER tasks_tally_update AFTER UPDATE ON tasks "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION duban_tally_update()"
    )
    born = add("(SELECT NEW.*)", "+")
    op.execute(
        "CREATE FUNCTION duban_tally_insert() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {upsert(born)} RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER tasks_tally_insert AFTER INSERT ON tasks "
        f"FOR EACH ROW WHEN (NEW.state IN {DONE}) EXECUTE FUNCTION duban_tally_insert()"
    )


def _sqlite_triggers() -> None:
    def add(row: str, sign: str) -> str:
        late = LATE.format(r=row)
        return (
            f"INSERT INTO tally_duty_day {DUTY_KEY[:-1]}, n) VALUES ({row}.due_date, "
            f"{row}.obligation_id, {row}.state, {late}, {sign}1) "
            f"ON CONFLICT {DUTY_KEY} DO UPDATE SET n = n + excluded.n; "
            f"INSERT INTO tally_org_month {ORG_KEY[:-1]}, n) "
            f"SELECT {_month(f'{row}.due_date')}, o.plan_id, {row}.org_id, {row}.state, "
            f"{late}, {sign}1 FROM obligations o WHERE o.id = {row}.obligation_id "
            f"ON CONFLICT {ORG_KEY} DO UPDATE SET n = n + excluded.n;"
        )

    op.execute(
        f"CREATE TRIGGER tasks_tally_insert AFTER INSERT ON tasks "
        f"WHEN NEW.state IN {DONE} BEGIN {add('NEW', '+')} END"
    )
    op.execute(
        f"CREATE TRIGGER tasks_tally_update_old AFTER UPDATE ON tasks "
        f"WHEN OLD.state IN {DONE} BEGIN {add('OLD', '-')} END"
    )
    op.execute(
        f"CREATE TRIGGER tasks_tally_update_new AFTER UPDATE ON tasks "
        f"WHEN NEW.state IN {DONE} BEGIN {add('NEW', '+')} END"
    )


def downgrade() -> None:
    if _pg():
        op.execute("DROP TRIGGER tasks_tally_insert ON tasks")
        op.execute("DROP TRIGGER tasks_tally_update ON tasks")
        op.execute("DROP FUNCTION duban_tally_insert()")
        op.execute("DROP FUNCTION duban_tally_update()")
    else:
        for name in ("tasks_tally_insert", "tasks_tally_update_old", "tasks_tally_update_new"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_tasks_pending_due_org", table_name="tasks")
    op.drop_table("tally_org_month")
    op.drop_table("tally_duty_day")
