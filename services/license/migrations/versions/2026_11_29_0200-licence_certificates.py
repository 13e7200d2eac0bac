"""Sealed licence certificates: the register of each licence version's signed PDF.

Every current licence version that exists already gets a ``pending`` certificate, so that the
sealer seals it too (without an event: its holder was told of the licence when it was issued).

Revision ID: l0002_certificates
Revises: l0001_initial
Create Date: 2026-11-29 02:00
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "l0002_certificates"
down_revision = "l0001_initial"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
BACKFILL_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "licence_certificates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("licence_id", sa.Uuid(), nullable=False),
        sa.Column("licence_no", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=True),
        sa.Column("event_data", sa.JSON(), nullable=True),
        sa.Column("content", sa.JSON(), nullable=True),
        sa.Column("content_digest", sa.String(64), nullable=True),
        sa.Column("signature", sa.JSON(), nullable=True),
        sa.Column("seal_id", sa.String(64), nullable=True),
        sa.Column("pdf_sha256", sa.String(64), nullable=True),
        sa.Column("pdf_size", sa.Integer(), nullable=True),
        sa.Column("storage_key", sa.String(300), nullable=True),
        sa.Column("sealed_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_licence_certificates"),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["licences.id"],
            name="fk_licence_certificates_licence_id_licences",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("licence_id", name="uq_licence_certificates_licence_id"),
        sa.UniqueConstraint(
            "licence_no", "version", name="uq_licence_certificates_licence_no_version"
        ),
    )
    op.create_index(
        "ix_licence_certificates_pending",
        "licence_certificates",
        ["next_attempt_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index("ix_licence_certificates_pdf_sha256", "licence_certificates", ["pdf_sha256"])
    _backfill()


def _backfill() -> None:
    """A pending certificate for every current licence version (the sealer does the rest)."""
    licences = sa.table(
        "licences",
        sa.column("id", sa.Uuid()),
        sa.column("licence_no", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("licence_type", sa.String()),
        sa.column("issued_on", sa.Date()),
        sa.column("is_current", sa.Boolean()),
    )
    types = sa.table(
        "licence_types", sa.column("code", sa.String()), sa.column("name", sa.String())
    )
    certificates = sa.table(
        "licence_certificates",
        sa.column("id", sa.Uuid()),
        sa.column("licence_id", sa.Uuid()),
        sa.column("licence_no", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("title", sa.String()),
        sa.column("issued_on", sa.Date()),
        sa.column("status", sa.String()),
        sa.column("registered_at", UTCDateTime()),
        sa.column("attempts", sa.Integer()),
        sa.column("next_attempt_at", UTCDateTime()),
    )
    now = datetime.now(UTC)
    rows = (
        op.get_bind()
        .execute(
            sa.select(
                licences.c.id,
                licences.c.licence_no,
                licences.c.version,
                licences.c.issued_on,
                types.c.name,
            )
            .join(types, types.c.code == licences.c.licence_type)
            .where(licences.c.is_current.is_(True))
            .order_by(licences.c.licence_no)
        )
        .all()
    )
    for start in range(0, len(rows), BACKFILL_BATCH):
        op.bulk_insert(
            certificates,  # type: ignore[arg-type]
            [
                {
                    "id": uuid.uuid4(),
                    "licence_id": row.id,
                    "licence_no": row.licence_no,
                    "version": row.version,
                    "title": row.name,
                    "issued_on": row.issued_on,
                    "status": "pending",
                    "registered_at": now,
                    "attempts": 0,
                    "next_attempt_at": now,
                }
                for row in rows[start : start + BACKFILL_BATCH]
            ],
        )


def downgrade() -> None:
    op.drop_index("ix_licence_certificates_pdf_sha256", table_name="licence_certificates")
    op.drop_index("ix_licence_certificates_pending", table_name="licence_certificates")
    op.drop_table("licence_certificates")
