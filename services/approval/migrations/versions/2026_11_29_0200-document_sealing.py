"""Documents are sealed by the worker: a pending state, retry bookkeeping, sealed columns nullable.

Revision ID: a0006_document_sealing
Revises: a0005_documents
Create Date: 2026-11-29 02:00
"""

import warnings

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0006_document_sealing"
down_revision = "a0005_documents"
branch_labels = None
depends_on = None

SEALED = (
    ("signature", sa.JSON()),
    ("seal_id", sa.String(64)),
    ("pdf_sha256", sa.String(64)),
    ("pdf_size", sa.Integer()),
    ("storage_key", sa.String(300)),
)
PENDING = sa.text("status = 'pending'")


# SQLite's batch mode reflects the table and its foreign-key target, whose expression index (the
# staff queue's) SQLAlchemy cannot reflect; the copy does not need it, so that warning is noise.
QUIET = "Skipped unsupported reflection of expression-based index"


def upgrade() -> None:
    with warnings.catch_warnings(), op.batch_alter_table("application_documents") as batch:
        warnings.filterwarnings("ignore", message=QUIET)
        for name, type_ in SEALED:
            batch.alter_column(name, existing_type=type_, nullable=True)
        batch.add_column(sa.Column("sealed_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.String(500), nullable=True))
    # Every document issued before this revision was sealed when it was issued.
    op.execute("UPDATE application_documents SET sealed_at = issued_at")
    op.create_index(
        "ix_application_documents_pending",
        "application_documents",
        ["next_attempt_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_application_documents_pending", table_name="application_documents")
    # Documents not yet sealed cannot satisfy the old schema's NOT NULL columns.
    op.execute("DELETE FROM application_documents WHERE status = 'pending'")
    with warnings.catch_warnings(), op.batch_alter_table("application_documents") as batch:
        warnings.filterwarnings("ignore", message=QUIET)
        batch.drop_column("last_error")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
        batch.drop_column("sealed_at")
        for name, type_ in SEALED:
            batch.alter_column(name, existing_type=type_, nullable=False)
