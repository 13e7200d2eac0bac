"""An index for the staff delivery list scoped by jurisdiction: ``GET /api/v1/deliveries``
lists one status (dead letters by default) under a jurisdiction range
(``govshared.jurisdictions.in_scope``), newest change first; ``ix_deliveries_status`` serves the
status and the order but not the scope, so a district with few deliveries walked every delivery
of the status.

Revision ID: n0003_deliveries_scope
Revises: n0002_inbox_payload
Create Date: 2026-12-07 09:00
"""

from alembic import op

from govshared.migrate import create_index_concurrently

revision = "n0003_deliveries_scope"
down_revision = "n0002_inbox_payload"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index_concurrently(
        "ix_deliveries_scope", "deliveries", ["status", "jurisdiction", "updated_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_scope", table_name="deliveries")
