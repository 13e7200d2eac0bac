"""The clocks' timer indexes hold running clocks only (partial, ``stopped_on IS NULL``).

The timers (``claim_due``) and a calendar change (``open_around``) read running clocks only. The
indexes they used held every clock ever started, and every stop wrote two entries to them; the
partial ones hold what is running, and a stop writes none. On PostgreSQL they are built and the
old ones dropped CONCURRENTLY: each build reads the whole table (seconds for millions of clocks),
and writers go on meanwhile (``govshared.migrate.create_index_concurrently``).

Revision ID: a0014_running_clock_indexes
Revises: a0013_staff_directory
Create Date: 2026-12-07 15:00
"""

import sqlalchemy as sa
from alembic import op

from govshared.migrate import create_index_concurrently, drop_index_concurrently

revision = "a0014_running_clock_indexes"
down_revision = "a0013_staff_directory"
branch_labels = None
depends_on = None

RUNNING = sa.text("stopped_on IS NULL")
INDEXES = (("due", "due_on"), ("warn", "warn_on"))


def upgrade() -> None:
    for name, column in INDEXES:
        create_index_concurrently(
            f"ix_application_clocks_running_{name}",
            "application_clocks",
            ["is_paused", column],
            postgresql_where=RUNNING,
            sqlite_where=RUNNING,
        )
        drop_index_concurrently(f"ix_application_clocks_{name}", "application_clocks")


def downgrade() -> None:
    for name, column in INDEXES:
        op.create_index(
            f"ix_application_clocks_{name}",
            "application_clocks",
            ["stopped_on", "is_paused", column],
        )
        op.drop_index(f"ix_application_clocks_running_{name}", table_name="application_clocks")
