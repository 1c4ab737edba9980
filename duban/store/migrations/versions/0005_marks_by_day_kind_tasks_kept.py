"""ladder marks indexed by (day, kind), without a foreign key; tasks can never be deleted

A catch-up sweep writes one mark per task, step and recipient (200,000 on the benchmark's worst
day). On PostgreSQL the foreign key's per-row check, which also locks each task row, made that
sweep about 1.5 times slower (4.5 against 3.0 times an indexed scan, three runs each). Marks are
only ever inserted by selecting from tasks, so all the key guarded against is a task being
deleted: a trigger now refuses that outright, on both databases. A task is waived, never
deleted; the audit trail, the outbox and the evidence refer to it.

With the kind in the marks' index, each of the sweep's message passes (escalations, reminders)
reads only its own marks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:30:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

REFUSAL = "tasks are never deleted (the audit trail and the outbox refer to them); waive a task"


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    with op.batch_alter_table("ladder_marks", schema=None) as batch_op:
        batch_op.drop_constraint("fk_ladder_marks_task_id_tasks", type_="foreignkey")
        batch_op.drop_index("ix_ladder_marks_day")
        batch_op.create_index("ix_ladder_marks_day_kind", ["day", "kind", "recipient"])
    if _pg():
        op.execute(
            "CREATE FUNCTION duban_tasks_are_kept() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER tasks_are_kept BEFORE DELETE ON tasks "
            "FOR EACH ROW EXECUTE FUNCTION duban_tasks_are_kept()"
        )
    else:
        op.execute(
            "CREATE TRIGGER tasks_are_kept BEFORE DELETE ON tasks "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )


def downgrade() -> None:
    if _pg():
        op.execute("DROP TRIGGER tasks_are_kept ON tasks")
        op.execute("DROP FUNCTION duban_tasks_are_kept()")
    else:
        op.execute("DROP TRIGGER tasks_are_kept")
    with op.batch_alter_table("ladder_marks", schema=None) as batch_op:
        batch_op.drop_index("ix_ladder_marks_day_kind")
        batch_op.create_index("ix_ladder_marks_day", ["day", "recipient"])
        batch_op.create_foreign_key("fk_ladder_marks_task_id_tasks", "tasks", ["task_id"], ["id"])
