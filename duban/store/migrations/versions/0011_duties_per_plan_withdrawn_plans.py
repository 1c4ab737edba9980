"""a duty is its plan and its id; plans may be withdrawn; the applied plan text is kept

- `obligations`: the unique key on `code` alone becomes unique (plan_id, code), so next
  year's plan may reuse this year's duty ids while each plan keeps its own rows, tasks and
  history; `code` keeps an index for the filters that name a duty by its id.
- `plans.withdrawn_at`, `plans.withdrawn_reason`: `duban plan withdraw` (its duties inactive).
- `plans.source_text`: the text of the applied file, what `duban plan roll` starts from.

Nothing else changes: no task, obligation, mail or audit row is rewritten. On PostgreSQL the
constraint is swapped in place. SQLite cannot drop a table constraint, so `obligations` is
rebuilt: its rows are copied aside, the table dropped and created anew, the rows put back with
their ids. Tasks, materializations and obligation versions refer to it; the foreign keys are
deferred to the commit for that (`PRAGMA defer_foreign_keys`, which SQLite resets at the
commit), when every referred row is back, so a broken reference still fails the migration.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:00:00
"""

import sqlalchemy as sa
from alembic import op

import duban.store.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS = (
    "id, code, plan_id, title, event_kind, spec, content_hash, active, receiver_org_id, "
    "effective_from"
)


#: the table as SQLite holds it since 0007, but for its unique key: the receiver's reference
#: stays a column constraint, which 0007's downgrade (ALTER TABLE … DROP COLUMN) relies on
SQLITE_TABLE = """
CREATE TABLE obligations (
\tid INTEGER NOT NULL,
\tcode VARCHAR(64) NOT NULL,
\tplan_id INTEGER NOT NULL,
\ttitle TEXT NOT NULL,
\tevent_kind VARCHAR(64),
\tspec JSON NOT NULL,
\tcontent_hash VARCHAR(64) NOT NULL,
\tactive BOOLEAN NOT NULL,
\treceiver_org_id INTEGER CONSTRAINT fk_obligations_receiver_org_id_organizations
\t\tREFERENCES organizations (id),
\teffective_from DATE,
\tCONSTRAINT pk_obligations PRIMARY KEY (id),
\tCONSTRAINT fk_obligations_plan_id_plans FOREIGN KEY(plan_id) REFERENCES plans (id),
\tCONSTRAINT {unique}
)
"""


def _rebuild_on_sqlite(unique: str) -> None:
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute(f"CREATE TEMP TABLE obligations_0011 AS SELECT {COLUMNS} FROM obligations")
    op.execute("DROP TABLE obligations")
    op.execute(SQLITE_TABLE.format(unique=unique))
    op.execute(f"INSERT INTO obligations ({COLUMNS}) SELECT {COLUMNS} FROM obligations_0011")
    op.execute("DROP TABLE obligations_0011")


def upgrade() -> None:
    op.add_column("plans", sa.Column("source_text", sa.Text(), nullable=True))
    op.add_column(
        "plans",
        sa.Column(
            "withdrawn_at", duban.store.models.UtcDateTime(timezone=True), nullable=True
        ),
    )
    op.add_column("plans", sa.Column("withdrawn_reason", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("uq_obligations_code", "obligations", type_="unique")
        op.create_unique_constraint("uq_obligations_plan_id_code", "obligations", ["plan_id", "code"])
    else:
        _rebuild_on_sqlite("uq_obligations_plan_id_code UNIQUE (plan_id, code)")
    op.create_index("ix_obligations_code", "obligations", ["code"])


def downgrade() -> None:
    """Refused while two plans hold one duty id (the old unique key cannot hold them)."""
    op.drop_index("ix_obligations_code", "obligations")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("uq_obligations_plan_id_code", "obligations", type_="unique")
        op.create_unique_constraint("uq_obligations_code", "obligations", ["code"])
    else:
        _rebuild_on_sqlite("uq_obligations_code UNIQUE (code)")
    op.drop_column("plans", "withdrawn_reason")
    op.drop_column("plans", "withdrawn_at")
    op.drop_column("plans", "source_text")
