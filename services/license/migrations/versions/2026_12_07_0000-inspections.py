"""双随机、一公开 inspections: plans, their draw and hash-chained record, inspections, evidence,
declared conflicts (回避), proposed licence acts; credit records name the inspection behind them.

Revision ID: l0004_inspections
Revises: l0003_licence_acts
Create Date: 2026-12-07 00:00
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "l0004_inspections"
down_revision = "l0003_licence_acts"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, referred: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=f"fk_{table}_{column}_{referred}",
        ondelete="RESTRICT",
    )


def upgrade() -> None:
    op.create_table(
        "inspection_plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("item_codes", sa.JSON(), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("ratios", sa.JSON(), nullable=False),
        sa.Column("inspectors", sa.JSON(), nullable=False),
        sa.Column("due_working_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inspection_plans"),
    )
    op.create_index(
        "ix_inspection_plans_jurisdiction", "inspection_plans", ["jurisdiction", "created_at"]
    )
    op.create_table(
        "inspection_draws",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("conflicts", sa.JSON(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("inputs_sha256", sa.String(64), nullable=False),
        sa.Column("targets_sha256", sa.String(64), nullable=False),
        sa.Column("drawn_by", sa.String(200), nullable=False),
        sa.Column("drawn_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", name="pk_inspection_draws"),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["inspection_plans.id"],
            name="fk_inspection_draws_plan_id_inspection_plans",
            ondelete="RESTRICT",
        ),
    )
    op.create_table(
        "inspection_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inspection_records"),
        _fk("inspection_records", "plan_id", "inspection_plans"),
        sa.UniqueConstraint("plan_id", "seq", name="uq_inspection_records_plan_id_seq"),
    )
    op.create_table(
        "inspector_conflicts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inspector", sa.String(200), nullable=False),
        sa.Column("holder_uscc", sa.String(18), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("declared_by", sa.String(200), nullable=False),
        sa.Column("declared_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inspector_conflicts"),
        sa.UniqueConstraint(
            "inspector", "holder_uscc", name="uq_inspector_conflicts_inspector_holder_uscc"
        ),
    )
    op.create_table(
        "inspections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reinspection_of", sa.Uuid(), nullable=True),
        sa.Column("holder_uscc", sa.String(18), nullable=False),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("licence_no", sa.String(40), nullable=False),
        sa.Column("licence_nos", sa.JSON(), nullable=False),
        sa.Column("item_code", sa.String(64), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("risk_class", sa.String(1), nullable=False),
        sa.Column("inspectors", sa.JSON(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("inspected_on", sa.Date(), nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=True),
        sa.Column("publish_by", sa.Date(), nullable=True),
        sa.Column("published_on", sa.Date(), nullable=True),
        sa.Column("rectify_by", sa.Date(), nullable=True),
        sa.Column("correction_status", sa.String(16), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inspections"),
        _fk("inspections", "plan_id", "inspection_plans"),
    )
    op.create_index("ix_inspections_plan", "inspections", ["plan_id", "due_on", "id"])
    op.create_index("ix_inspections_published", "inspections", ["published_on", "id"])
    op.create_index("ix_inspections_holder", "inspections", ["holder_uscc"])
    op.create_table(
        "inspection_evidence",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(300), nullable=False),
        sa.Column("uploaded_by", sa.String(200), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inspection_evidence"),
        _fk("inspection_evidence", "inspection_id", "inspections"),
    )
    op.create_index("ix_inspection_evidence_inspection", "inspection_evidence", ["inspection_id"])
    op.create_table(
        "inspection_proposals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=False),
        sa.Column("licence_no", sa.String(40), nullable=False),
        sa.Column("act", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("proposed_by", sa.String(200), nullable=False),
        sa.Column("proposed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inspection_proposals"),
        _fk("inspection_proposals", "inspection_id", "inspections"),
    )
    op.create_index("ix_inspection_proposals_licence", "inspection_proposals", ["licence_no"])
    with op.batch_alter_table("credit_records") as batch:
        batch.add_column(sa.Column("inspection_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credit_records") as batch:
        batch.drop_column("inspection_id")
    for table in (
        "inspection_proposals",
        "inspection_evidence",
        "inspections",
        "inspector_conflicts",
        "inspection_records",
        "inspection_draws",
        "inspection_plans",
    ):
        op.drop_table(table)
