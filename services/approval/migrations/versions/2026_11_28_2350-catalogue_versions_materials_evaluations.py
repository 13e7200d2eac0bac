"""Guide versions, reform mode on items, intake route, materials, 好差评 and remediation tasks.

Revision ID: a0003_catalogue
Revises: a0002_calendar
Create Date: 2026-11-28 23:50
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0003_catalogue"
down_revision = "a0002_calendar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("reform_mode", sa.String(32), nullable=True))
    with op.batch_alter_table("applications") as batch:
        batch.add_column(
            sa.Column("intake_route", sa.String(16), nullable=False, server_default="review")
        )
        batch.add_column(sa.Column("receipt_no", sa.String(40), nullable=True))
    op.create_table(
        "item_versions",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("item_type", sa.String(32), nullable=False),
        sa.Column("authority", sa.String(200), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("is_instant", sa.Boolean(), nullable=False),
        sa.Column("statutory_limit_days", sa.Integer(), nullable=False),
        sa.Column("committed_limit_days", sa.Integer(), nullable=False),
        sa.Column("reform_mode", sa.String(32), nullable=True),
        sa.Column("guide", sa.JSON(), nullable=False),
        sa.Column("change_note", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("code", "version", name="pk_item_versions"),
    )
    op.create_table(
        "application_materials",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("storage_key", sa.String(300), nullable=True),
        sa.Column("licence_no", sa.String(64), nullable=True),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_application_materials"),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name="fk_application_materials_application_id_applications",
        ),
    )
    op.create_index(
        "ix_application_materials_application", "application_materials", ["application_id"]
    )
    op.create_table(
        "evaluations",
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("indicators", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("item_code", sa.String(64), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("application_id", name="pk_evaluations"),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name="fk_evaluations_application_id_applications",
        ),
    )
    op.create_table(
        "remediation_tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_remediation_tasks"),
        sa.UniqueConstraint("application_id", name="uq_remediation_tasks_application_id"),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name="fk_remediation_tasks_application_id_applications",
        ),
    )
    op.create_index(
        "ix_remediation_tasks_queue", "remediation_tasks", ["jurisdiction", "status", "due_on"]
    )


def downgrade() -> None:
    op.drop_index("ix_remediation_tasks_queue", table_name="remediation_tasks")
    op.drop_table("remediation_tasks")
    op.drop_table("evaluations")
    op.drop_index("ix_application_materials_application", table_name="application_materials")
    op.drop_table("application_materials")
    op.drop_table("item_versions")
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("receipt_no")
        batch.drop_column("intake_route")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("reform_mode")
