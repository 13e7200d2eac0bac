"""一件事一次办: bundles in the catalogue (versioned) and bundle applications with their members.

Revision ID: a0010_bundles
Revises: a0009_signing_evidence
Create Date: 2026-12-07 03:00
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "a0010_bundles"
down_revision = "a0009_signing_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bundles",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "bundle_versions",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("change_note", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "bundle_applications",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("bundle_code", sa.String(64), nullable=False),
        sa.Column("bundle_version", sa.Integer(), nullable=False),
        sa.Column("bundle_name", sa.String(200), nullable=False),
        sa.Column("applicant_uscc", sa.String(18), nullable=False),
        sa.Column("applicant_name", sa.String(200), nullable=False),
        sa.Column("form", sa.JSON(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(24), nullable=True),
    )
    op.create_index(
        "ix_bundle_applications_applicant",
        "bundle_applications",
        ["applicant_uscc", "submitted_at", "id"],
    )
    op.create_index("ix_bundle_applications_open", "bundle_applications", ["decided_at"])
    op.create_table(
        "bundle_members",
        sa.Column(
            "bundle_application_id",
            sa.Uuid(),
            sa.ForeignKey("bundle_applications.id", ondelete="RESTRICT"),
            primary_key=True,
        ),
        sa.Column("item_code", sa.String(64), primary_key=True),
        sa.Column("application_id", sa.Uuid(), sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.UniqueConstraint("application_id"),
    )
    op.create_index("ix_bundle_members_jurisdiction", "bundle_members", ["jurisdiction"])


def downgrade() -> None:
    op.drop_index("ix_bundle_members_jurisdiction", table_name="bundle_members")
    op.drop_table("bundle_members")
    op.drop_index("ix_bundle_applications_open", table_name="bundle_applications")
    op.drop_index("ix_bundle_applications_applicant", table_name="bundle_applications")
    op.drop_table("bundle_applications")
    op.drop_table("bundle_versions")
    op.drop_table("bundles")
