"""The law, exactly: 容缺受理 follow-ups, and each clock's extension limit (Art. 42(1) or (2)).

Revision ID: a0007_law_approval
Revises: a0006_document_sealing
Create Date: 2026-12-06 23:00
"""

import warnings

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0007_law_approval"
down_revision = "a0006_document_sealing"
branch_labels = None
depends_on = None

# SQLite's batch mode reflects the foreign-key target, whose expression index it cannot reflect.
QUIET = "Skipped unsupported reflection of expression-based index"


def upgrade() -> None:
    # NULL: the ordinary ten working days of Art. 42(1) (every clock opened before this revision).
    with warnings.catch_warnings(), op.batch_alter_table("application_clocks") as batch:
        warnings.filterwarnings("ignore", message=QUIET)
        batch.add_column(sa.Column("extension_limit_days", sa.Integer(), nullable=True))
    op.create_table(
        "application_tolerances",
        sa.Column(
            "application_id",
            sa.Uuid(),
            sa.ForeignKey("applications.id", ondelete="RESTRICT"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("deliver_by", sa.Date(), nullable=False),
        sa.Column("accepted_by", sa.String(200), nullable=False),
        sa.Column("accepted_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("material_id", sa.Uuid(), nullable=True),
        sa.Column("overdue_at", UTCDateTime(), nullable=True),
    )
    op.create_index(
        "ix_application_tolerances_follow_up",
        "application_tolerances",
        ["jurisdiction", "delivered_at", "deliver_by"],
    )


def downgrade() -> None:
    op.drop_index("ix_application_tolerances_follow_up", table_name="application_tolerances")
    op.drop_table("application_tolerances")
    with warnings.catch_warnings(), op.batch_alter_table("application_clocks") as batch:
        warnings.filterwarnings("ignore", message=QUIET)
        batch.drop_column("extension_limit_days")
