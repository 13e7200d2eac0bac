"""Signing sessions: applicants' SM2 signatures made on their phones.

Revision ID: a0008_signing_sessions
Revises: a0007_law_approval
Create Date: 2026-12-07 00:00
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0008_signing_sessions"
down_revision = "a0007_law_approval"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_sessions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=True),
        sa.Column("subject_uscc", sa.String(18), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("signature", sa.String(128), nullable=True),
        sa.Column("certificate", sa.Text(), nullable=True),
        sa.Column("certificate_serial", sa.String(40), nullable=True),
        sa.Column("signer", sa.String(300), nullable=True),
        sa.Column("signed_at", UTCDateTime(), nullable=True),
        sa.Column("consumed_at", UTCDateTime(), nullable=True),
        sa.Column("consumed_by", sa.String(100), nullable=True),
    )
    op.create_index(
        "ix_signing_sessions_open",
        "signing_sessions",
        ["subject_uscc", "purpose", "target", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_signing_sessions_open", table_name="signing_sessions")
    op.drop_table("signing_sessions")
