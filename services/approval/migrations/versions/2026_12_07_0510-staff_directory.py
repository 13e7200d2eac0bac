"""Staff directory: who may receive a transferred task or a delegation.

Revision ID: a0013_staff_directory
Revises: a0012_opinion_escalation
Create Date: 2026-12-07 05:10
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0013_staff_directory"
down_revision = "a0012_opinion_escalation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_members",
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("department", sa.String(32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_index(
        "ix_staff_members_role", "staff_members", ["jurisdiction", "role", "department"]
    )


def downgrade() -> None:
    op.drop_index("ix_staff_members_role", table_name="staff_members")
    op.drop_table("staff_members")
