"""Notify's REST schemas (pydantic v2)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from govshared.chinatime import CHINA_ZONE_NAME
from govshared.freeform import BoundedJson
from govshared.uscc import USCC
from notify.models import PROVIDER_ID_CHARS, Channel, DeliveryStatus


class EventOutcome(StrEnum):
    """What became of one posted event."""

    ACCEPTED = "accepted"  # new: its notices were created
    DUPLICATE = "duplicate"  # already received: nothing new
    IGNORED = "ignored"  # a type notify has no rule for
    INVALID = "invalid"  # data does not match the type's schema (logged, not retried)


class EventResult(BaseModel):
    """The outcome of one event of a batch."""

    id: str
    outcome: EventOutcome
    notices: int = 0
    error: str | None = None


class IngestResult(BaseModel):
    """The outcome of a posted batch of events."""

    received: int
    accepted: int
    duplicates: int
    results: list[EventResult]


class InboxDocument(BaseModel):
    """A sealed document a message serves: the portal's download button and verification link."""

    document_id: uuid.UUID
    kind: str = Field(examples=["acceptance", "licence"])
    title: str = Field(examples=["受理通知书"])
    number: str
    issued_on: date
    pdf_sha256: str = Field(description="SHA-256 of the PDF as issued (hex)")
    pdf_size: int
    download_path: str = Field(
        description="Path on the issuing service (routed by the gateway); the holder's token reads it",
        examples=["/api/v1/applications/{id}/documents/{document_id}/pdf"],
    )
    download_url: str | None = Field(default=None, description="The link the message text shows")
    verify_url: str = Field(description="Public verification page or API")


class InboxMessageOut(BaseModel):
    """An in-app message (站内信)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_type: str
    subject: str | None
    title: str
    body: str
    critical: bool
    document: InboxDocument | None = Field(
        default=None, description="The sealed document served with this notice, if any"
    )
    is_read: bool
    created_at: datetime
    read_at: datetime | None


class UnreadCount(BaseModel):
    """How many messages are unread."""

    unread: int


class StatusChangeOut(BaseModel):
    """One entry of a delivery's status history."""

    model_config = ConfigDict(from_attributes=True)

    status: DeliveryStatus
    detail: str | None
    at: datetime


class DeliveryOut(BaseModel):
    """A delivery as staff see it: where it stands and why."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    notification_id: uuid.UUID
    event_id: str
    event_type: str
    subject: str | None
    recipient: str
    jurisdiction: str | None
    channel: Channel
    critical: bool
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    fallback_of: uuid.UUID | None
    title: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(DeliveryOut):
    """A delivery with its status history."""

    history: list[StatusChangeOut]


class DeliveryBrief(BaseModel):
    """A delivery created by a direct notification."""

    id: uuid.UUID
    channel: Channel
    status: DeliveryStatus


class NotificationCreate(BaseModel):
    """A notice to an enterprise from another caller, rendered with the event type's templates."""

    model_config = ConfigDict(extra="forbid")

    recipient_uscc: USCC
    event_type: str = Field(
        min_length=1, max_length=200, examples=["cn.gov.approval.application.accepted.v1"]
    )
    subject: str | None = Field(default=None, max_length=200)
    data: BoundedJson = Field(default_factory=dict, description="Template variables")
    critical: bool | None = Field(default=None, description="Default: the event type's rule")
    channels: list[Channel] | None = Field(
        default=None,
        min_length=1,
        description="Default (absent or null): every channel; a channel named twice is one",
    )

    @field_validator("channels")
    @classmethod
    def _each_channel_once(cls, value: list[Channel] | None) -> list[Channel] | None:
        # One notice per channel (the deliveries' exactly-once key): a repeat had failed the
        # whole request with a 500.
        return None if value is None else list(dict.fromkeys(value))


class NotificationAccepted(BaseModel):
    """The notices created by a direct notification."""

    event_id: str
    notification_id: uuid.UUID
    recipient: str
    deliveries: list[DeliveryBrief]


_MOBILE = r"^1[3-9]\d{9}$"
_EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]+$"


class ProfileIn(BaseModel):
    """An enterprise's contact addresses, preferences and quiet hours."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, pattern=_EMAIL, max_length=320)
    mobile: str | None = Field(default=None, pattern=_MOBILE, examples=["13800138000"])
    time_zone: str = Field(default=CHINA_ZONE_NAME, max_length=64)
    quiet_start: time | None = Field(default=None, examples=["22:00"])
    quiet_end: time | None = Field(default=None, examples=["08:00"])
    disabled_channels: list[Channel] = Field(
        default_factory=list, description="Channels for non-critical notices that are turned off"
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("未知的时区") from exc
        return value

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _local_time(cls, value: time | None) -> time | None:
        # Quiet hours are wall-clock times in ``time_zone``; an offset would be dropped when
        # stored, moving the hours (08:00-05:00 is 21:00 in Shanghai, kept as 08:00).
        if value is not None and value.tzinfo is not None:
            raise ValueError("免打扰时段为 time_zone 时区的本地时间，不能带时区偏移")
        return value

    @field_validator("disabled_channels")
    @classmethod
    def _inbox_stays(cls, value: list[Channel]) -> list[Channel]:
        if Channel.INBOX in value:
            raise ValueError("站内信不能关闭")
        return sorted(set(value))


class ProfileOut(ProfileIn):
    """The stored profile."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    recipient: str
    updated_at: datetime | None = None


class WebhookCreate(BaseModel):
    """A new webhook subscription of the calling enterprise."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=500, examples=["https://erp.example.com/onestop"])
    description: str | None = Field(default=None, max_length=200)
    event_types: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=50,
        description="Event type patterns (fnmatch); empty: every notice",
        examples=[["cn.gov.approval.application.*"]],
    )


class WebhookOut(BaseModel):
    """A webhook subscription (its secret is shown only when created or rotated)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    """A subscription with its signing secret (store it: it is not shown again)."""

    secret: str
    previous_secret_expires_at: datetime | None = None


class TemplateOut(BaseModel):
    """A template version."""

    event_type: str
    channel: str
    version: int
    title: str | None
    body: str
    sms_template_id: str | None
    builtin: bool
    created_at: datetime | None = None


class TemplateCreate(BaseModel):
    """A new version of a template."""

    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(min_length=1, max_length=200)
    channel: str = Field(pattern=r"^(inbox|email|sms|webhook|staff_inbox)$")
    title: str | None = Field(default=None, max_length=2000)
    body: str = Field(min_length=1, max_length=20000)
    sms_template_id: str | None = Field(default=None, max_length=64)


class TemplatePreviewIn(BaseModel):
    """Render a template (the current one, or a draft) with sample data."""

    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(min_length=1, max_length=200)
    channel: str = Field(pattern=r"^(inbox|email|sms|webhook|staff_inbox)$")
    data: BoundedJson = Field(default_factory=dict, description="Sample template variables")
    title: str | None = Field(default=None, max_length=2000, description="Draft title")
    body: str | None = Field(default=None, max_length=20000, description="Draft body")


class TemplatePreviewOut(BaseModel):
    """The rendered preview."""

    version: int | None
    title: str | None
    body: str
    sms_template_id: str | None = None
    sms_params: dict[str, str] | None = None


class SmsReceiptStatus(StrEnum):
    """What the SMS provider reports."""

    DELIVERED = "delivered"
    FAILED = "failed"


class SmsReceipt(BaseModel):
    """A delivery receipt (状态报告) from the SMS provider."""

    message_id: str = Field(min_length=1, max_length=PROVIDER_ID_CHARS)
    status: SmsReceiptStatus
    error_code: str | None = Field(default=None, max_length=64)
    reported_at: datetime | None = None
