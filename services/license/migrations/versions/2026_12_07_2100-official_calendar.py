"""license keeps the official holiday schedules approval's admins load (调休 included), so that
its own limits in working days count the days approval's clocks count.

Revision ID: l0007_official_calendar
Revises: l0006_inspections_scope
Create Date: 2026-12-07 21:00
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "l0007_official_calendar"
down_revision = "l0006_inspections_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "official_calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("closed_weekdays", sa.JSON(), nullable=False),
        sa.Column("working_weekends", sa.JSON(), nullable=False),
        sa.Column("notice", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=True),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_official_calendar_years")),
    )


def downgrade() -> None:
    op.drop_table("official_calendar_years")
