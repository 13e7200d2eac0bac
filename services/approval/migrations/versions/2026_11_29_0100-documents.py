"""Sealed documents: the register of notices and decisions with their signatures and PDFs.

Revision ID: a0005_documents
Revises: a0004_clocks
Create Date: 2026-11-29 01:00
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0005_documents"
down_revision = "a0004_clocks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "application_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("title", sa.String(64), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=False),
        sa.Column("signature", sa.JSON(), nullable=False),
        sa.Column("seal_id", sa.String(64), nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=False),
        sa.Column("pdf_size", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name="fk_application_documents_application_id_applications",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_application_documents"),
        sa.UniqueConstraint("number", name="uq_application_documents_number"),
    )
    op.create_index(
        "ix_application_documents_application",
        "application_documents",
        ["application_id", "issued_at"],
    )
    op.create_index("ix_application_documents_pdf_sha256", "application_documents", ["pdf_sha256"])


def downgrade() -> None:
    op.drop_index("ix_application_documents_pdf_sha256", table_name="application_documents")
    op.drop_index("ix_application_documents_application", table_name="application_documents")
    op.drop_table("application_documents")
