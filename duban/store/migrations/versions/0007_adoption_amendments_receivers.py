"""plans as a county lives them: adoption, amendments, receivers

- `organizations.joined`: the day an organization started using duban; nothing that fell due
  before it is owed (the deployment's own date, `adopted`, lives in `meta`).
- `plans.file_sha256`: the version of the plan file applied (`duban plan apply`).
- `obligations.receiver_org_id`: the organization the text says receives the submission
  (`submit_to`); its users see and review those submissions. `obligations.effective_from`:
  the day an amendment was applied; earlier periods are not created under it.
- `obligation_versions`: every spec ever stored, so a task keeps the rule it was created
  under; `tasks.plan_version` and `tasks.spec_hash` name it.

The task columns are added with plain ALTER TABLE (no batch copy), so the trigger that keeps
tasks from being deleted (0005) stays in place on SQLite.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import duban.store.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RECEIVER_FK = "fk_obligations_receiver_org_id_organizations"


def upgrade() -> None:
    op.add_column("organizations", sa.Column("joined", sa.Date(), nullable=True))
    op.add_column("plans", sa.Column("file_sha256", sa.String(length=64), nullable=True))
    # plain ALTER TABLE on both databases: a batch copy of `obligations` would drop the table
    # that tasks refer to, which SQLite refuses once tasks exist
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("obligations", sa.Column("receiver_org_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            RECEIVER_FK, "obligations", "organizations", ["receiver_org_id"], ["id"]
        )
    else:  # SQLite adds a column with its reference in one ALTER TABLE, or not at all
        op.execute(
            "ALTER TABLE obligations ADD COLUMN receiver_org_id INTEGER "
            f"CONSTRAINT {RECEIVER_FK} REFERENCES organizations (id)"
        )
    op.add_column("obligations", sa.Column("effective_from", sa.Date(), nullable=True))
    op.add_column("tasks", sa.Column("plan_version", sa.String(length=64), nullable=True))
    op.add_column("tasks", sa.Column("spec_hash", sa.String(length=64), nullable=True))
    op.create_table(
        "obligation_versions",
        sa.Column("obligation_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("plan_version", sa.String(length=64), nullable=True),
        sa.Column("stored_at", duban.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["obligation_id"],
            ["obligations.id"],
            name=op.f("fk_obligation_versions_obligation_id_obligations"),
        ),
        sa.PrimaryKeyConstraint(
            "obligation_id", "content_hash", name=op.f("pk_obligation_versions")
        ),
    )


def downgrade() -> None:
    op.drop_table("obligation_versions")
    op.drop_column("tasks", "spec_hash")
    op.drop_column("tasks", "plan_version")
    op.drop_column("obligations", "effective_from")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(RECEIVER_FK, "obligations", type_="foreignkey")
    op.drop_column("obligations", "receiver_org_id")
    op.drop_column("plans", "file_sha256")
    op.drop_column("organizations", "joined")
