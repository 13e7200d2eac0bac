"""An index for the staff inspection list scoped by jurisdiction: ``GET /api/v1/inspections``
filters ``jurisdiction`` by a range (``govshared.jurisdictions.under_prefix``) and orders by due
date; no index began with ``jurisdiction``, so a district with few inspections read the table.

Revision ID: l0006_inspections_scope
Revises: l0005_correction_timer
Create Date: 2026-12-07 09:00
"""

from alembic import op

from govshared.migrate import create_index_concurrently

revision = "l0006_inspections_scope"
down_revision = "l0005_correction_timer"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index_concurrently(
        "ix_inspections_jurisdiction", "inspections", ["jurisdiction", "due_on", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_inspections_jurisdiction", table_name="inspections")
