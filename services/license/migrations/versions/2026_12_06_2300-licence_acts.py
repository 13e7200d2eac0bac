"""The law's acts on a licence, each its own record (行政许可法 Arts. 8, 50, 69, 70; 行政处罚法).

New columns: the act behind a licence's status (date, legal basis, its required fields), the 注销
that follows (Art. 70), whether a pending renewal was applied for in time (Art. 50) and by which
application, an entry's own fields in the history, and the 责令限期整改 of a commitment check.

Existing rows: ``revoked`` was written only by the 撤销 endpoint and by a failed commitment check,
both 撤销 under Art. 69, so those rows stay ``revoked`` and get the 注销 that follows (Art. 70(4)).
Expired rows get the 注销 of Art. 70(1). A renewal pending today was accepted by the old rule only
in the last 30 days before expiry, when the register refused any earlier one: the holders relied on
the register, so those renewals are kept as timely (protected by deemed renewal).

Revision ID: l0003_licence_acts
Revises: l0002_certificates
Create Date: 2026-12-06 23:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "l0003_licence_acts"
down_revision = "l0002_certificates"
branch_labels = None
depends_on = None

ART_69 = "《中华人民共和国行政许可法》第六十九条"


def upgrade() -> None:
    with op.batch_alter_table("licences") as batch:
        batch.add_column(sa.Column("renewal_timely", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("renewal_application_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("renewal_application_no", sa.String(40), nullable=True))
        batch.add_column(sa.Column("act_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("act_basis", sa.Text(), nullable=True))
        batch.add_column(sa.Column("act_details", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("cancelled_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("cancellation_ground", sa.String(32), nullable=True))
    with op.batch_alter_table("licence_history") as batch:
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))
    with op.batch_alter_table("verification_tasks") as batch:
        batch.add_column(sa.Column("rectify_by", sa.Date(), nullable=True))
        batch.add_column(sa.Column("rectification_findings", sa.Text(), nullable=True))
    _backfill()


def _licences() -> sa.TableClause:
    return sa.table(
        "licences",
        sa.column("id", sa.Uuid()),
        sa.column("status", sa.String()),
        sa.column("updated_at", sa.DateTime()),
        sa.column("renewal_requested_on", sa.Date()),
        sa.column("renewal_timely", sa.Boolean()),
        sa.column("act_on", sa.Date()),
        sa.column("act_basis", sa.Text()),
        sa.column("act_details", sa.JSON()),
        sa.column("cancelled_on", sa.Date()),
        sa.column("cancellation_ground", sa.String()),
    )


def _day(value: object) -> object:
    """The date of a stored timestamp (SQLite hands back text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return datetime.fromisoformat(value).date()
    return datetime.now(UTC).date()


def _backfill() -> None:
    licences = _licences()
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(licences.c.id, licences.c.status, licences.c.updated_at).where(
            licences.c.status.in_(["revoked", "expired"])
        )
    ).all()
    for row in rows:
        day = _day(row.updated_at)
        values: dict[str, object] = {"cancelled_on": day, "cancellation_ground": row.status}
        if row.status == "revoked":
            values.update(act_on=day, act_basis=ART_69, act_details={"migrated": True})
        bind.execute(sa.update(licences).where(licences.c.id == row.id).values(**values))
    bind.execute(
        sa.update(licences)
        .where(licences.c.renewal_requested_on.is_not(None))
        .values(renewal_timely=True)
    )


def downgrade() -> None:
    licences = _licences()
    bind = op.get_bind()
    # The old schema knew one final status for every act that ends a licence.
    bind.execute(
        sa.update(licences)
        .where(licences.c.status.in_(["withdrawn", "penalty_revoked", "cancelled"]))
        .values(status="revoked")
    )
    tasks = sa.table("verification_tasks", sa.column("status", sa.String()))
    bind.execute(sa.update(tasks).where(tasks.c.status == "rectifying").values(status="open"))
    with op.batch_alter_table("verification_tasks") as batch:
        batch.drop_column("rectification_findings")
        batch.drop_column("rectify_by")
    with op.batch_alter_table("licence_history") as batch:
        batch.drop_column("details")
    with op.batch_alter_table("licences") as batch:
        for column in (
            "cancellation_ground",
            "cancelled_on",
            "act_details",
            "act_basis",
            "act_on",
            "renewal_application_no",
            "renewal_application_id",
            "renewal_timely",
        ):
            batch.drop_column(column)
