"""Signing sessions keep what the revocation check found at signing time (the signed PDFs show it).

Revision ID: a0009_signing_evidence
Revises: a0008_signing_sessions
Create Date: 2026-12-07 01:00
"""

import sqlalchemy as sa
from alembic import op

revision = "a0009_signing_evidence"
down_revision = "a0008_signing_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signing_sessions") as batch:
        batch.add_column(sa.Column("revocation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signing_sessions") as batch:
        batch.drop_column("revocation")
