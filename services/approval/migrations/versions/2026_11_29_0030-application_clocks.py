"""Per-application statutory clocks (budget + ledger) and the work queue's due-date cache.

Revision ID: a0004_clocks
Revises: a0003_catalogue
Create Date: 2026-11-29 00:30

Applications already open when this runs get no clock rows: the service opens clocks at the
lifecycle events that follow (an operator can backfill from the audit trail if needed).
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0004_clocks"
down_revision = "a0003_catalogue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "application_clocks",
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("budget_days", sa.Integer(), nullable=False),
        sa.Column("committed_days", sa.Integer(), nullable=True),
        sa.Column("stopped_on", sa.Date(), nullable=True),
        sa.Column("stop_reason", sa.String(32), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("warn_on", sa.Date(), nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("used_days", sa.Integer(), nullable=True),
        sa.Column("warned_at", UTCDateTime(), nullable=True),
        sa.Column("overdue_at", UTCDateTime(), nullable=True),
        sa.Column("deemed_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name="fk_application_clocks_application_id_applications",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("application_id", "kind", name="pk_application_clocks"),
    )
    op.create_index(
        "ix_application_clocks_due", "application_clocks", ["stopped_on", "is_paused", "due_on"]
    )
    op.create_index(
        "ix_application_clocks_warn", "application_clocks", ["stopped_on", "is_paused", "warn_on"]
    )
    op.create_table(
        "application_clock_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entry", sa.String(16), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(2000), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name="fk_application_clock_entries_application_id_applications",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_application_clock_entries"),
    )
    op.create_index(
        "ix_application_clock_entries_clock",
        "application_clock_entries",
        ["application_id", "kind", "recorded_at"],
    )
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("due_on", sa.Date(), nullable=True))
    # The work queue orders by the due date with undated (closed) cases last; the expression must
    # be spelled exactly as the repository's query spells it for the planner to use the index.
    op.create_index(
        "ix_applications_due",
        "applications",
        [sa.text("coalesce(due_on, '9999-12-31')"), "submitted_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_applications_due", table_name="applications")
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("due_on")
    op.drop_index("ix_application_clock_entries_clock", table_name="application_clock_entries")
    op.drop_table("application_clock_entries")
    op.drop_index("ix_application_clocks_warn", table_name="application_clocks")
    op.drop_index("ix_application_clocks_due", table_name="application_clocks")
    op.drop_table("application_clocks")
