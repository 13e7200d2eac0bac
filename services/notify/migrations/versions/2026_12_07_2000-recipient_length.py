"""A recipient key holds a whole token subject: ``user:<sub>`` and ``department:<code>`` up to 255.

Named users and a review chain's assignees and delegates are told under ``user:<sub>``, consulted
departments under ``department:<code>``; a token's ``sub`` and ``department`` claims may be 200
characters long (``govshared.auth.MAX_CLAIM_CHARS``), but the column held 64. On PostgreSQL the
notice of an assignee whose identity provider issues a longer subject (a DN, a URI) failed the
whole event batch it came in, which the relay then sent again and again.

Widening a varchar rewrites neither the table nor its indexes on PostgreSQL; SQLite does not
enforce the length and batch mode copies the table.

Revision ID: n0005_recipient_length
Revises: n0004_inbox_stream_seq
Create Date: 2026-12-07 20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "n0005_recipient_length"
down_revision = "n0004_inbox_stream_seq"
branch_labels = None
depends_on = None

TABLES = ("deliveries", "inbox_messages")


def _alter(length: int, was: int) -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "recipient", existing_type=sa.String(length=was), type_=sa.String(length=length)
            )
    if op.get_context().dialect.name == "sqlite":
        # The copy made the inbox's indexes anew, in another order; without statistics SQLite
        # then reads the stream's poll through the listing index and sorts. Made last again, the
        # stream's index serves the poll as before (tests/integration/test_staff_inbox_index).
        op.drop_index("ix_inbox_messages_stream", table_name="inbox_messages")
        op.create_index(
            "ix_inbox_messages_stream", "inbox_messages", ["recipient", "stream_seq"], unique=False
        )


def upgrade() -> None:
    _alter(255, was=64)


def downgrade() -> None:
    _alter(64, was=255)
