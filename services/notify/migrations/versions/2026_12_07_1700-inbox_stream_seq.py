"""Inbox messages get a stream position in commit order: the SSE stream resumes after a position.

The stream used to position itself by (created_at, id) and send ``Last-Event-ID`` as that keyset,
but ``created_at`` is stamped when the intake transaction runs, not when it commits: a message
stamped earlier whose transaction committed after the stream's last read sorted before the client's
``Last-Event-ID`` and was never streamed. ``stream_seq`` is handed out from the one-row
``inbox_stream_counter`` inside the inserting transaction, whose row lock is held until commit, so
positions follow commit order (``notify.repository.InboxRepository.insert_many``).

Existing messages are numbered in (created_at, id) order, the order the old stream sent them in,
so an old ``Last-Event-ID`` maps onto the same place; the counter starts after the last of them.
``ix_inbox_messages_stream`` (recipient, stream_seq) serves the stream's read: a reader's messages
past a position, in position order.

The roll-out (deploy/README.md, expand then contract): the old version's pods keep serving while
the new ones start, and their inserts name no ``stream_seq``. On PostgreSQL a trigger numbers such
a row from the same counter (its lock held to commit as the new code's is), so an old pod's message
is streamed in order too; the new code always names the column and never fires it. A later release
drops the trigger. SQLite is one embedded process, never rolled out beside another version.

Revision ID: n0004_inbox_stream_seq
Revises: n0003_deliveries_scope
Create Date: 2026-12-07 17:00
"""

import sqlalchemy as sa
from alembic import op

revision = "n0004_inbox_stream_seq"
down_revision = "n0003_deliveries_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_stream_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_stream_counter")),
    )
    with op.batch_alter_table("inbox_messages") as batch:
        batch.add_column(sa.Column("stream_seq", sa.BigInteger(), nullable=True))
    # UPDATE ... FROM and window functions: PostgreSQL, and SQLite since 3.33.
    op.execute(
        "UPDATE inbox_messages SET stream_seq = numbered.seq FROM ("
        "SELECT id, ROW_NUMBER() OVER (ORDER BY created_at, id) AS seq FROM inbox_messages"
        ") AS numbered WHERE inbox_messages.id = numbered.id"
    )
    op.execute(
        "INSERT INTO inbox_stream_counter (id, value) "
        "SELECT 1, COALESCE(MAX(stream_seq), 0) FROM inbox_messages"
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION inbox_stream_position() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN UPDATE inbox_stream_counter SET value = value + 1 WHERE id = 1 "
            "RETURNING value INTO NEW.stream_seq; RETURN NEW; END $$"
        )
        op.execute(
            "CREATE TRIGGER inbox_messages_stream_position BEFORE INSERT ON inbox_messages "
            "FOR EACH ROW WHEN (NEW.stream_seq IS NULL) EXECUTE FUNCTION inbox_stream_position()"
        )
    with op.batch_alter_table("inbox_messages") as batch:
        batch.alter_column("stream_seq", existing_type=sa.BigInteger(), nullable=False)
    op.create_index(
        "ix_inbox_messages_stream", "inbox_messages", ["recipient", "stream_seq"], unique=False
    )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER inbox_messages_stream_position ON inbox_messages")
        op.execute("DROP FUNCTION inbox_stream_position()")
    op.drop_index("ix_inbox_messages_stream", table_name="inbox_messages")
    with op.batch_alter_table("inbox_messages") as batch:
        batch.drop_column("stream_seq")
    op.drop_table("inbox_stream_counter")
