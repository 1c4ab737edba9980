"""the duty tally counts tasks in every state; delivered tasks per institution and quarter

Migration 0008 counted only delivered tasks per duty and due day; the administrator's home
counted what is owed (open, rejected) past due from the tasks themselves, about a hundred
thousand index entries per page view on a province. Now `tally_duty_day` holds every state
(`late` is false for tasks not delivered), and a page sums a few thousand tally rows:

- a task is born open in one set-based INSERT per duty and period (duban.engine.materialize),
  which adds the statement's row count to the tally in the same transaction (a per-row
  trigger would slow the insert of a province's tasks by half on SQLite);
- a task born in any other state (none is, today) is counted by the INSERT trigger;
- every later change (an action, an amendment, a bulk UPDATE) by the UPDATE trigger, as in
  0008: on PostgreSQL one set-based statement over the transition tables, on SQLite per row,
  only when the state, the due day, the duty or the lateness changed.

`tally_org_month` is unchanged: delivered tasks only. `tally_org_quarter` is new: on time and
late per institution, plan and quarter, one row each, kept by the same triggers, so ranking
13,000 institutions by on-time rate groups one quarter's 13,000 rows per plan instead of
60,000 rows of months, states and lateness.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DONE = "('submitted', 'accepted')"
# late: delivered, and the last submission at or after the due instant (a rejected task keeps
# its submission time, and is not late: it is owed)
LATE = (
    f"({{r}}.state IN {DONE} AND {{r}}.submitted_at IS NOT NULL "
    "AND {r}.submitted_at >= {r}.due_at)"
)
DUTY_KEY = "(due_date, obligation_id, state, late)"
ORG_KEY = "(month, plan_id, org_id, state, late)"
QUARTER_KEY = "(quarter, plan_id, org_id)"


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _month(column: str) -> str:
    if _pg():
        return f"CAST(date_trunc('month', {column}) AS date)"
    return f"date({column}, 'start of month')"


def _quarter(column: str) -> str:
    if _pg():
        return f"CAST(date_trunc('quarter', {column}) AS date)"
    months_in = f"((CAST(strftime('%m', {column}) AS INTEGER) - 1) % 3)"
    return f"date({column}, 'start of month', '-' || {months_in} || ' months')"


def upgrade() -> None:
    op.create_table(
        "tally_org_quarter",
        sa.Column("quarter", sa.Date(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("quarter", "plan_id", "org_id", name=op.f("pk_tally_org_quarter")),
    )
    late = LATE.format(r="t")
    op.execute(
        f"INSERT INTO tally_org_quarter {QUARTER_KEY[:-1]}, on_time, late) "
        f"SELECT {_quarter('t.due_date')}, o.plan_id, t.org_id, "
        f"sum(CASE WHEN {late} THEN 0 ELSE 1 END), sum(CASE WHEN {late} THEN 1 ELSE 0 END) "
        "FROM tasks t JOIN obligations o ON o.id = t.obligation_id "
        f"WHERE t.state IN {DONE} GROUP BY 1, 2, 3"
    )
    op.execute(
        f"INSERT INTO tally_duty_day {DUTY_KEY[:-1]}, n) "
        f"SELECT due_date, obligation_id, state, false, count(*) FROM tasks "
        f"WHERE state NOT IN {DONE} GROUP BY 1, 2, 3"
    )
    if _pg():
        _drop_pg()
        _pg_triggers(every_state=True)
    else:
        _drop_sqlite()
        _sqlite_triggers(every_state=True)


def downgrade() -> None:
    op.execute(f"DELETE FROM tally_duty_day WHERE state NOT IN {DONE}")
    if _pg():
        _drop_pg()
        _pg_triggers(every_state=False)
    else:
        _drop_sqlite()
        _sqlite_triggers(every_state=False)
    op.drop_table("tally_org_quarter")


def _drop_pg() -> None:
    op.execute("DROP TRIGGER tasks_tally_insert ON tasks")
    op.execute("DROP TRIGGER tasks_tally_update ON tasks")
    op.execute("DROP FUNCTION duban_tally_insert()")
    op.execute("DROP FUNCTION duban_tally_update()")


def _drop_sqlite() -> None:
    for name in ("tasks_tally_insert", "tasks_tally_update_old", "tasks_tally_update_new"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for name in ("tasks_tally_duty_old", "tasks_tally_duty_new"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _pg_triggers(*, every_state: bool) -> None:
    def rows(source: str, sign: str, *, done_only: bool) -> str:
        where = f"WHERE r.state IN {DONE}" if done_only else ""
        return (
            f"SELECT r.due_date, r.obligation_id, o.plan_id, r.org_id, r.state, "
            f"{LATE.format(r='r')} AS late, {sign}1 AS d "
            f"FROM {source} r JOIN obligations o ON o.id = r.obligation_id {where}"
        )

    def upsert(old: str | None, new: str) -> str:
        def both(*, done_only: bool) -> str:
            parts = [rows(new, "+", done_only=done_only)]
            if old:
                parts.insert(0, rows(old, "-", done_only=done_only))
            return " UNION ALL ".join(parts)

        # rows in key order, so two transactions lock the tallies in the same order
        return (
            f"INSERT INTO tally_duty_day AS t {DUTY_KEY[:-1]}, n) "
            f"SELECT due_date, obligation_id, state, late, sum(d) "
            f"FROM ({both(done_only=not every_state)}) c "
            "GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4 "
            f"ON CONFLICT {DUTY_KEY} DO UPDATE SET n = t.n + excluded.n; "
            f"INSERT INTO tally_org_month AS t {ORG_KEY[:-1]}, n) "
            f"SELECT {_month('due_date')}, plan_id, org_id, state, late, sum(d) "
            f"FROM ({both(done_only=True)}) c GROUP BY 1, 2, 3, 4, 5 HAVING sum(d) <> 0 "
            f"ORDER BY 1, 2, 3, 4, 5 ON CONFLICT {ORG_KEY} DO UPDATE SET n = t.n + excluded.n;"
            + (
                f"INSERT INTO tally_org_quarter AS t {QUARTER_KEY[:-1]}, on_time, late) "
                f"SELECT {_quarter('due_date')}, plan_id, org_id, "
                "sum(CASE WHEN late THEN 0 ELSE d END), sum(CASE WHEN late THEN d ELSE 0 END) "
                f"FROM ({both(done_only=True)}) c GROUP BY 1, 2, 3 "
                "HAVING sum(CASE WHEN late THEN 0 ELSE d END) <> 0 "
                "OR sum(CASE WHEN late THEN d ELSE 0 END) <> 0 ORDER BY 1, 2, 3 "
                f"ON CONFLICT {QUARTER_KEY} DO UPDATE SET on_time = t.on_time + "
                "excluded.on_time, late = t.late + excluded.late;"
                if every_state
                else ""
            )
        )

    op.execute(
        "CREATE FUNCTION duban_tally_update() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {upsert('old_rows', 'new_rows')} RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER tasks_tally_update AFTER UPDATE ON tasks "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION duban_tally_update()"
    )
    op.execute(
        "CREATE FUNCTION duban_tally_insert() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {upsert(None, '(SELECT NEW.*)')} RETURN NULL; END $$"
    )
    born = "NEW.state <> 'open'" if every_state else f"NEW.state IN {DONE}"
    op.execute(
        "CREATE TRIGGER tasks_tally_insert AFTER INSERT ON tasks "
        f"FOR EACH ROW WHEN ({born}) EXECUTE FUNCTION duban_tally_insert()"
    )


def _sqlite_triggers(*, every_state: bool) -> None:
    def duty(row: str, sign: str) -> str:
        return (
            f"INSERT INTO tally_duty_day {DUTY_KEY[:-1]}, n) VALUES ({row}.due_date, "
            f"{row}.obligation_id, {row}.state, {LATE.format(r=row)}, {sign}1) "
            f"ON CONFLICT {DUTY_KEY} DO UPDATE SET n = n + excluded.n;"
        )

    def done(row: str) -> str:
        return f"{row}.state IN {DONE}"

    def org(row: str, sign: str) -> str:  # delivered tasks only
        late = LATE.format(r=row)
        quarter = (
            f"INSERT INTO tally_org_quarter {QUARTER_KEY[:-1]}, on_time, late) "
            f"SELECT {_quarter(f'{row}.due_date')}, o.plan_id, {row}.org_id, "
            f"CASE WHEN {late} THEN 0 ELSE {sign}1 END, CASE WHEN {late} THEN {sign}1 ELSE 0 END "
            f"FROM obligations o WHERE o.id = {row}.obligation_id AND {done(row)} "
            f"ON CONFLICT {QUARTER_KEY} DO UPDATE SET on_time = on_time + excluded.on_time, "
            "late = late + excluded.late;"
        )
        return (
            f"INSERT INTO tally_org_month {ORG_KEY[:-1]}, n) "
            f"SELECT {_month(f'{row}.due_date')}, o.plan_id, {row}.org_id, {row}.state, "
            f"{late}, {sign}1 FROM obligations o "
            f"WHERE o.id = {row}.obligation_id AND {done(row)} "
            f"ON CONFLICT {ORG_KEY} DO UPDATE SET n = n + excluded.n;"
        ) + (quarter if every_state else "")

    if not every_state:  # as migration 0008 left them
        op.execute(
            f"CREATE TRIGGER tasks_tally_insert AFTER INSERT ON tasks "
            f"WHEN {done('NEW')} BEGIN {duty('NEW', '+')} {org('NEW', '+')} END"
        )
        op.execute(
            f"CREATE TRIGGER tasks_tally_update_old AFTER UPDATE ON tasks "
            f"WHEN {done('OLD')} BEGIN {duty('OLD', '-')} {org('OLD', '-')} END"
        )
        op.execute(
            f"CREATE TRIGGER tasks_tally_update_new AFTER UPDATE ON tasks "
            f"WHEN {done('NEW')} BEGIN {duty('NEW', '+')} {org('NEW', '+')} END"
        )
        return
    op.execute(
        f"CREATE TRIGGER tasks_tally_insert AFTER INSERT ON tasks WHEN NEW.state <> 'open' "
        f"BEGIN {duty('NEW', '+')} {org('NEW', '+')} END"
    )
    op.execute(
        f"CREATE TRIGGER tasks_tally_update_old AFTER UPDATE ON tasks "
        f"WHEN {done('OLD')} BEGIN {org('OLD', '-')} END"
    )
    op.execute(
        f"CREATE TRIGGER tasks_tally_update_new AFTER UPDATE ON tasks "
        f"WHEN {done('NEW')} BEGIN {org('NEW', '+')} END"
    )
    moved = (
        "OLD.state IS NOT NEW.state OR OLD.due_date IS NOT NEW.due_date "
        "OR OLD.obligation_id IS NOT NEW.obligation_id "
        f"OR {LATE.format(r='OLD')} IS NOT {LATE.format(r='NEW')}"
    )
    op.execute(
        f"CREATE TRIGGER tasks_tally_duty_old AFTER UPDATE ON tasks WHEN {moved} "
        f"BEGIN {duty('OLD', '-')} END"
    )
    op.execute(
        f"CREATE TRIGGER tasks_tally_duty_new AFTER UPDATE ON tasks WHEN {moved} "
        f"BEGIN {duty('NEW', '+')} END"
    )
