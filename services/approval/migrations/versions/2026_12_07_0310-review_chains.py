"""Review chains: each case's tasks (steps and consulted departments' opinions) and delegations.

Revision ID: a0011_review_chains
Revises: a0010_bundles
Create Date: 2026-12-07 03:10
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0011_review_chains"
down_revision = "a0010_bundles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_tasks",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "application_id",
            sa.Uuid(),
            sa.ForeignKey("applications.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step_key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("department", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("conditions", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("completed_by", sa.String(200), nullable=True),
        sa.Column("overridden_by", sa.String(200), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("overridden_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_review_tasks_application", "review_tasks", ["application_id", "created_at"])
    op.create_index(
        "ix_review_tasks_queue", "review_tasks", ["status", "role", "jurisdiction", "due_on"]
    )
    op.create_index("ix_review_tasks_assignee", "review_tasks", ["assignee", "status"])
    op.create_table(
        "delegations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("delegator", sa.String(200), nullable=False),
        sa.Column("delegate", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("department", sa.String(32), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_delegations_delegate", "delegations", ["delegate", "starts_on"])
    op.create_index("ix_delegations_delegator", "delegations", ["delegator", "starts_on"])


def downgrade() -> None:
    op.drop_table("delegations")
    op.drop_table("review_tasks")
