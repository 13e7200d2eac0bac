"""Inbox messages carry a payload: the sealed document a notice serves (issue 7).

Revision ID: n0002_inbox_payload
Revises: n0001_initial
Create Date: 2026-11-29 12:00
"""

import sqlalchemy as sa
from alembic import op

revision = "n0002_inbox_payload"
down_revision = "n0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_messages") as batch:
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox_messages") as batch:
        batch.drop_column("payload")
