"""Indexes for the timer of missed correction deadlines: open orders by deadline, and the
re-inspection of each order.

Revision ID: l0005_correction_timer
Revises: l0004_inspections
Create Date: 2026-12-07 02:00
"""

from alembic import op

from govshared.migrate import create_index_concurrently

revision = "l0005_correction_timer"
down_revision = "l0004_inspections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index_concurrently(
        "ix_inspections_correction", "inspections", ["correction_status", "rectify_by"]
    )
    create_index_concurrently("ix_inspections_reinspection_of", "inspections", ["reinspection_of"])


def downgrade() -> None:
    op.drop_index("ix_inspections_reinspection_of", table_name="inspections")
    op.drop_index("ix_inspections_correction", table_name="inspections")
