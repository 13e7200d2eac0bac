"""Initial schema: reform catalogue, licence register, verification, credit, outbox, inbox, keys.

Revision ID: l0001_initial
Revises:
Create Date: 2026-11-28 23:00
"""

import sqlalchemy as sa
from alembic import op

from govshared.db import UTCDateTime

revision = "l0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reform_items",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("item_type", sa.String(32), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_reform_items"),
    )
    op.create_table(
        "reform_item_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("item_code", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("batch", sa.String(200), nullable=True),
        sa.Column("reform_measures", sa.Text(), nullable=False),
        sa.Column("supervision_measures", sa.Text(), nullable=False),
        sa.Column("supervising_department", sa.String(200), nullable=False),
        sa.Column("commitment_text", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reform_item_versions"),
        sa.ForeignKeyConstraint(
            ["item_code"],
            ["reform_items.code"],
            name="fk_reform_item_versions_item_code_reform_items",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint(
            "item_code", "version", name="uq_reform_item_versions_item_code_version"
        ),
        sa.UniqueConstraint(
            "item_code",
            "jurisdiction",
            "effective_from",
            name="uq_reform_item_versions_item_code_jurisdiction_effective_from",
        ),
    )
    op.create_index(
        "ix_reform_item_versions_lookup",
        "reform_item_versions",
        ["item_code", "jurisdiction", "effective_from"],
    )
    op.create_table(
        "licence_types",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("item_code", sa.String(64), nullable=True),
        sa.Column("issuing_authority", sa.String(200), nullable=False),
        sa.Column("validity_months", sa.Integer(), nullable=True),
        sa.Column("number_prefix", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_licence_types"),
        sa.UniqueConstraint("item_code", name="uq_licence_types_item_code"),
    )
    op.create_table(
        "licences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("licence_no", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("licence_type", sa.String(64), nullable=False),
        sa.Column("item_code", sa.String(64), nullable=True),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("holder_uscc", sa.String(18), nullable=False),
        sa.Column("issuing_authority", sa.String(200), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("particulars", sa.JSON(), nullable=False),
        sa.Column("granted_on_commitment", sa.Boolean(), nullable=False),
        sa.Column("source_application_id", sa.Uuid(), nullable=True),
        sa.Column("source_application_no", sa.String(40), nullable=True),
        sa.Column("source_event_id", sa.String(64), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("renewal_requested_on", sa.Date(), nullable=True),
        sa.Column("renewal_reminders_sent", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_licences"),
        sa.ForeignKeyConstraint(
            ["licence_type"], ["licence_types.code"], name="fk_licences_licence_type_licence_types"
        ),
        sa.UniqueConstraint("licence_no", "version", name="uq_licences_licence_no_version"),
    )
    # At most one current version per licence number.
    op.create_index(
        "uq_licences_current",
        "licences",
        ["licence_no"],
        unique=True,
        postgresql_where=sa.text("is_current"),
        sqlite_where=sa.text("is_current"),
    )
    op.create_index("ix_licences_holder", "licences", ["holder_uscc", "licence_no"])
    op.create_index("ix_licences_expiry", "licences", ["is_current", "status", "valid_until"])
    op.create_index("ix_licences_register", "licences", ["jurisdiction", "licence_no"])
    op.create_index("ix_licences_source_application", "licences", ["source_application_id"])
    op.create_table(
        "licence_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("licence_id", sa.Uuid(), nullable=False),
        sa.Column("licence_no", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_licence_history"),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["licences.id"],
            name="fk_licence_history_licence_id_licences",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_licence_history_licence", "licence_history", ["licence_no", "occurred_at"])
    op.create_table(
        "licence_counters",
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "year", name="pk_licence_counters"),
    )
    op.create_table(
        "verification_tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("licence_no", sa.String(40), nullable=False),
        sa.Column("holder_uscc", sa.String(18), nullable=False),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("item_code", sa.String(64), nullable=True),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("drawn", sa.Boolean(), nullable=False),
        sa.Column("inspectors", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_verification_tasks"),
    )
    op.create_index(
        "ix_verification_tasks_queue",
        "verification_tasks",
        ["jurisdiction", "status", "due_on", "id"],
    )
    op.create_index("ix_verification_tasks_licence", "verification_tasks", ["licence_no"])
    op.create_table(
        "credit_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("holder_uscc", sa.String(18), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("serious", sa.Boolean(), nullable=False),
        sa.Column("bars_commitment", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("licence_no", sa.String(40), nullable=True),
        sa.Column("item_code", sa.String(64), nullable=True),
        sa.Column("verification_task_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_credit_records"),
    )
    op.create_index("ix_credit_records_holder", "credit_records", ["holder_uscc", "recorded_at"])
    op.create_table(
        "enterprise_applications",
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("application_no", sa.String(40), nullable=False),
        sa.Column("holder_uscc", sa.String(18), nullable=False),
        sa.Column("item_code", sa.String(64), nullable=False),
        sa.Column("jurisdiction", sa.String(12), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("business_type", sa.String(16), nullable=True),
        sa.Column("reform_mode", sa.String(32), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("application_id", name="pk_enterprise_applications"),
    )
    op.create_index(
        "ix_enterprise_applications_holder",
        "enterprise_applications",
        ["holder_uscc", "item_code"],
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.String(80), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_events"),
    )
    op.create_index(
        "ix_outbox_events_pending",
        "outbox_events",
        ["available_at"],
        postgresql_where=sa.text("delivered_at IS NULL"),
        sqlite_where=sa.text("delivered_at IS NULL"),
    )
    op.create_table(
        "inbox_events",
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox_events"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("inbox_events")
    op.drop_index("ix_outbox_events_pending", table_name="outbox_events")
    op.drop_table("outbox_events")
    op.drop_index("ix_enterprise_applications_holder", table_name="enterprise_applications")
    op.drop_table("enterprise_applications")
    op.drop_index("ix_credit_records_holder", table_name="credit_records")
    op.drop_table("credit_records")
    op.drop_index("ix_verification_tasks_licence", table_name="verification_tasks")
    op.drop_index("ix_verification_tasks_queue", table_name="verification_tasks")
    op.drop_table("verification_tasks")
    op.drop_table("licence_counters")
    op.drop_index("ix_licence_history_licence", table_name="licence_history")
    op.drop_table("licence_history")
    op.drop_index("ix_licences_source_application", table_name="licences")
    op.drop_index("ix_licences_register", table_name="licences")
    op.drop_index("ix_licences_expiry", table_name="licences")
    op.drop_index("ix_licences_holder", table_name="licences")
    op.drop_index("uq_licences_current", table_name="licences")
    op.drop_table("licences")
    op.drop_table("licence_types")
    op.drop_index("ix_reform_item_versions_lookup", table_name="reform_item_versions")
    op.drop_table("reform_item_versions")
    op.drop_table("reform_items")
