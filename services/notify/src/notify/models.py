"""Notify's ORM models (typed SQLAlchemy 2); hot paths use their ``__table__`` with Core."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from govshared.db import UTCDateTime
from notify.db import metadata

# A recipient key: a USCC, ``staff:<jurisdiction>:<role>``, ``department:<code>`` or
# ``user:<sub>``, whose claim may be 200 characters long (govshared.auth.MAX_CLAIM_CHARS).
RECIPIENT_CHARS = 255

# The longest SMS provider message id a delivery keeps (receipts name it: ``SmsReceipt``).
PROVIDER_ID_CHARS = 128

# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base bound to notify's metadata."""

    metadata = metadata


class Channel(StrEnum):
    """Where a notice is delivered."""

    INBOX = "inbox"  # 站内信
    EMAIL = "email"  # 电子邮件
    SMS = "sms"  # 短信
    WEBHOOK = "webhook"  # 企业系统回调


class DeliveryStatus(StrEnum):
    """A delivery's state; every change is appended to its history."""

    QUEUED = "queued"  # 排队中
    SENDING = "sending"  # 发送中
    SENT = "sent"  # 已发出（待回执）
    DELIVERED = "delivered"  # 已送达
    FAILED = "failed"  # 失败，将重试
    DEAD = "dead"  # 已放弃（死信）


class RecipientKind(StrEnum):
    """Who a notice is for."""

    ENTERPRISE = "enterprise"  # recipient is the USCC
    STAFF = "staff"  # recipient is "staff:<jurisdiction>:<role>"
    USER = "user"  # recipient is a named user's subject


class InboxMessage(Base):
    """An in-app message (站内信); its id is the id of its inbox delivery."""

    __tablename__ = "inbox_messages"
    __table_args__ = (
        Index("ix_inbox_messages_listing", "recipient", "is_read", "created_at", "id"),
        # The SSE stream: a reader's messages past a position, in position order.
        Index("ix_inbox_messages_stream", "recipient", "stream_seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(RECIPIENT_CHARS))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    critical: Mapped[bool] = mapped_column(Boolean)
    # What the portal shows beside the text: ``{"document": {...}}`` for a served sealed document.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The message's place in the SSE stream, in the order the messages COMMIT (``created_at`` is
    # when its transaction stamped it, and an earlier stamp can commit later): numbered from
    # ``inbox_stream_counter`` in the inserting transaction (``InboxRepository.insert_many``).
    stream_seq: Mapped[int] = mapped_column(BigInteger)

    @property
    def document(self) -> dict[str, Any] | None:
        """The sealed document the message serves, if any."""
        document = (self.payload or {}).get("document")
        return document if isinstance(document, dict) else None


class InboxStreamCounter(Base):
    """The last stream position handed out (one row). A transaction takes its positions with
    ``UPDATE ... RETURNING`` and holds the row's lock until it commits, so the next one waits:
    positions are given in commit order, and every snapshot sees a prefix of them."""

    __tablename__ = "inbox_stream_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)


class Delivery(Base):
    """One notice to one recipient on one channel (and target), with its retry state."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # Exactly once: an event never reaches the same recipient on the same channel twice.
        UniqueConstraint("event_id", "recipient", "channel", "target"),
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('queued', 'failed')"),
            sqlite_where=text("status IN ('queued', 'failed')"),
        ),
        Index("ix_deliveries_status", "status", "updated_at", "id"),
        # The staff list (/deliveries): one status under a jurisdiction range (in_scope).
        Index("ix_deliveries_scope", "status", "jurisdiction", "updated_at", "id"),
        Index("ix_deliveries_rate", "recipient", "channel", "sent_at"),
        Index("ix_deliveries_provider", "provider_message_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(200))
    event_source: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(RECIPIENT_CHARS))
    jurisdiction: Mapped[str | None] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str | None] = mapped_column(String(500))
    critical: Mapped[bool] = mapped_column(Boolean)
    template_version: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(PROVIDER_ID_CHARS))
    fallback_of: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeliveryStatusChange(Base):
    """One entry of a delivery's status history (append-only)."""

    __tablename__ = "delivery_status_history"
    __table_args__ = (Index("ix_delivery_status_history_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class RecipientProfile(Base):
    """A recipient's contact addresses, channel preferences and quiet hours."""

    __tablename__ = "recipient_profiles"

    recipient: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    mobile: Mapped[str | None] = mapped_column(String(20))
    time_zone: Mapped[str] = mapped_column(String(64))
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    disabled_channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookSubscription(Base):
    """An enterprise's own endpoint that receives its notices, signed with HMAC-SHA256."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_owner", "owner", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(String(200))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Template(Base):
    """An admin-published version of a template; built-in version 1 lives in code."""

    __tablename__ = "templates"

    event_type: Mapped[str] = mapped_column(String(200), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    sms_template_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
