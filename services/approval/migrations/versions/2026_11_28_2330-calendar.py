"""Working-day calendar: dates with their kind and source, loaded years, local closure days.

Revision ID: a0002_calendar
Revises: a0001_initial
Create Date: 2026-11-28 23:30

The rows themselves are seeded by the service at start (``seed_calendar``), not here: the library's
data changes with its releases, and a migration should not pin it.
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0002_calendar"
down_revision = "a0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("source", sa.String(24), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_calendar_days"),
    )
    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(24), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("notice", sa.String(200), nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_calendar_years"),
    )
    op.create_table(
        "calendar_closures",
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("jurisdiction", "day", name="pk_calendar_closures"),
    )
    op.create_index("ix_calendar_closures_day", "calendar_closures", ["day"])


def downgrade() -> None:
    op.drop_index("ix_calendar_closures_day", table_name="calendar_closures")
    op.drop_table("calendar_closures")
    op.drop_table("calendar_years")
    op.drop_table("calendar_days")
