"""task page indexes: the overdue board and the history read a page, not the whole table

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PENDING = sa.text("state IN ('open', 'rejected')")


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_pending_due",
            ["due_at", "id"],
            unique=False,
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )
        batch_op.create_index(
            "ix_tasks_pending_obligation_due",
            ["obligation_id", "due_at", "id"],
            unique=False,
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )
        batch_op.create_index("ix_tasks_due", ["due_date", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_due")
        batch_op.drop_index("ix_tasks_pending_obligation_due")
        batch_op.drop_index("ix_tasks_pending_due")
