"""Review chains: when the timer escalated an overdue opinion to the government head.

Revision ID: a0012_opinion_escalation
Revises: a0011_review_chains
Create Date: 2026-12-07 05:00
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0012_opinion_escalation"
down_revision = "a0011_review_chains"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("review_tasks", sa.Column("escalated_at", UTCDateTime(), nullable=True))
    # The opinion timer's claim: open opinions by due date.
    op.create_index("ix_review_tasks_overdue", "review_tasks", ["kind", "status", "due_on"])


def downgrade() -> None:
    op.drop_index("ix_review_tasks_overdue", table_name="review_tasks")
    op.drop_column("review_tasks", "escalated_at")
