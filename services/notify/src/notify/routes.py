"""Notify's REST API (``/api/v1``). Routes stay thin: parse, authorise, call the service."""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ValidationError

from govshared.auth import Principal, Role, require_roles
from govshared.consumer import (
    EVENT_ERRORS,
    EVENTS_OPENAPI,
    EventProducerMismatch,
    read_events,
)
from govshared.db import AutoCommitRoute
from govshared.idempotency import check_key
from govshared.pagination import InvalidCursor, Page, decode_keyset, page_of
from govshared.problems import (
    Forbidden,
    IdempotencyKeyReused,
    Unauthenticated,
    ValidationFailed,
    problem_responses,
)
from notify.channels.sms import receipt_signature
from notify.dependencies import (
    Admin,
    Context,
    Deliveries,
    Enterprise,
    Inbox,
    InboxReader,
    Intake,
    MessageById,
    Preferences,
    Staff,
    Templates,
    WebhookById,
    Webhooks,
)
from notify.errors import (
    DeliveryNotFound,
    InvalidReceipt,
    InvalidWebhookUrl,
    MessageNotFound,
    NotReplayable,
    ReceiptsDisabled,
    TemplateLimitExceeded,
    TemplateNotFound,
    TemplateRenderFailed,
    WebhookLimitReached,
    WebhookNotFound,
)
from notify.inbox import (
    StreamStart,
    inbox_updates,
    parse_stream_event_id,
    recipients_of,
    stream_event_id,
)
from notify.models import DeliveryStatus
from notify.schemas import (
    DeliveryDetail,
    DeliveryOut,
    InboxMessageOut,
    IngestResult,
    NotificationAccepted,
    NotificationCreate,
    ProfileIn,
    ProfileOut,
    SmsReceipt,
    SmsReceiptStatus,
    StatusChangeOut,
    TemplateCreate,
    TemplateOut,
    TemplatePreviewIn,
    TemplatePreviewOut,
    UnreadCount,
    WebhookCreate,
    WebhookOut,
    WebhookWithSecret,
)

router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute)
AUTH_ERRORS = (Unauthenticated, Forbidden)


async def last_event_cursor(
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID", description="Resume after this message (EventSource sends it)"
        ),
    ] = None,
) -> StreamStart:
    """The stream position to resume from; checked before the stream starts, so a bad one is a
    400 (``invalid_cursor``) rather than a stream that ends at once."""
    if not last_event_id:
        return None
    return parse_stream_event_id(last_event_id)


# --- events -------------------------------------------------------------------------------


@router.post(
    "/events",
    tags=["events"],
    summary="接收事件 (service): CloudEvents, one envelope or a batch",
    response_model=IngestResult,
    responses=problem_responses(*AUTH_ERRORS, *EVENT_ERRORS),
    openapi_extra=EVENTS_OPENAPI,
)
async def receive_events(
    request: Request,
    intake: Intake,
    _principal: Annotated[Principal, Depends(require_roles(Role.SERVICE))],
) -> IngestResult:
    """Consume events posted by the other services' outbox relays; a redelivery creates nothing."""
    return await intake.ingest(await read_events(request))


@router.post(
    "/notifications",
    tags=["notifications"],
    summary="发送通知 (service, admin)",
    status_code=202,
    response_model=NotificationAccepted,
    responses=problem_responses(
        *AUTH_ERRORS,
        TemplateNotFound,
        TemplateRenderFailed,
        TemplateLimitExceeded,
        IdempotencyKeyReused,
        ValidationFailed,
        EventProducerMismatch,
    ),
)
async def create_notification(
    body: NotificationCreate,
    intake: Intake,
    principal: Annotated[Principal, Depends(require_roles(Role.SERVICE, Role.ADMIN))],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="A retry with the same key returns the first result, never a second notice",
        ),
    ] = None,
) -> JSONResponse:
    """Notify an enterprise with an event type's templates and the given data."""
    result = await intake.notify_direct(
        principal=principal, body=body, idempotency_key=check_key(idempotency_key)
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


# --- inbox --------------------------------------------------------------------------------


@router.get(
    "/inbox",
    tags=["inbox"],
    summary="站内信列表 (enterprise, staff): unread first, then newest",
    response_model=Page[InboxMessageOut],
    responses=problem_responses(InvalidCursor, *AUTH_ERRORS, ValidationFailed),
)
async def list_inbox(
    inbox: Inbox,
    principal: InboxReader,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Page[InboxMessageOut]:
    """The caller's own messages."""
    after = decode_keyset(cursor, bool, datetime, uuid.UUID) if cursor else None
    rows = await inbox.list_inbox(principal=principal, limit=limit + 1, after=after)
    return page_of(
        [InboxMessageOut.model_validate(r) for r in rows[:limit]],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.is_read, last.created_at.isoformat(), str(last.id)],
    )


@router.get(
    "/inbox/unread-count",
    tags=["inbox"],
    summary="未读数 (enterprise, staff)",
    response_model=UnreadCount,
    responses=problem_responses(*AUTH_ERRORS),
)
async def unread_count(inbox: Inbox, principal: InboxReader) -> UnreadCount:
    """How many of the caller's messages are unread."""
    return UnreadCount(unread=await inbox.unread_count(principal=principal))


@router.get(
    "/inbox/stream",
    tags=["inbox"],
    summary="新消息推送 (enterprise, staff): Server-Sent Events",
    response_class=EventSourceResponse,
    responses=problem_responses(InvalidCursor, *AUTH_ERRORS, ValidationFailed),
)
async def inbox_stream(
    request: Request,
    context: Context,
    principal: InboxReader,
    since: Annotated[StreamStart, Depends(last_event_cursor)],
) -> AsyncIterator[ServerSentEvent]:
    """New messages as they arrive; the stream ends after a while and the browser reconnects."""
    yield ServerSentEvent(comment="connected", retry=3000)
    async for message in inbox_updates(
        context.sessionmaker,
        context.inbox_signal,
        recipients=recipients_of(principal),
        since=since,
        poll_seconds=context.settings.sse_poll_seconds,
        max_seconds=context.settings.sse_max_seconds,
        is_disconnected=request.is_disconnected,
    ):
        item = InboxMessageOut.model_validate(message)
        yield ServerSentEvent(
            data=item, event="message", id=stream_event_id(item.created_at, item.id)
        )


@router.get(
    "/inbox/{message_id}",
    tags=["inbox"],
    summary="站内信详情 (enterprise, staff)",
    response_model=InboxMessageOut,
    responses=problem_responses(*AUTH_ERRORS, MessageNotFound),
)
async def get_message(message: MessageById) -> InboxMessageOut:
    """One of the caller's messages."""
    return InboxMessageOut.model_validate(message)


@router.post(
    "/inbox/{message_id}/read",
    tags=["inbox"],
    summary="标记已读 (enterprise, staff)",
    response_model=InboxMessageOut,
    responses=problem_responses(*AUTH_ERRORS, MessageNotFound),
)
async def mark_read(message_id: uuid.UUID, inbox: Inbox, principal: InboxReader) -> InboxMessageOut:
    """Mark one of the caller's messages read (repeating it changes nothing)."""
    message = await inbox.mark_read(principal=principal, message_id=message_id)
    return InboxMessageOut.model_validate(message)


# --- preferences --------------------------------------------------------------------------


@router.get(
    "/preferences",
    tags=["preferences"],
    summary="通知设置 (enterprise)",
    response_model=ProfileOut,
    responses=problem_responses(*AUTH_ERRORS),
)
async def get_preferences(preferences: Preferences, principal: Enterprise) -> ProfileOut:
    """The enterprise's contacts, channel preferences and quiet hours."""
    assert principal.uscc is not None
    return ProfileOut.model_validate(await preferences.get_profile(recipient=principal.uscc))


@router.put(
    "/preferences",
    tags=["preferences"],
    summary="修改通知设置 (enterprise)",
    response_model=ProfileOut,
    responses=problem_responses(*AUTH_ERRORS, ValidationFailed),
)
async def put_preferences(
    body: ProfileIn, preferences: Preferences, principal: Enterprise
) -> ProfileOut:
    """Replace the enterprise's preferences (critical notices ignore them)."""
    assert principal.uscc is not None
    return ProfileOut.model_validate(
        await preferences.save_profile(recipient=principal.uscc, body=body)
    )


# --- webhooks -----------------------------------------------------------------------------


@router.post(
    "/webhooks",
    tags=["webhooks"],
    summary="新增回调订阅 (enterprise)",
    status_code=201,
    response_model=WebhookWithSecret,
    responses=problem_responses(
        *AUTH_ERRORS, InvalidWebhookUrl, WebhookLimitReached, ValidationFailed
    ),
)
async def create_webhook(
    body: WebhookCreate, webhooks: Webhooks, principal: Enterprise
) -> WebhookWithSecret:
    """Subscribe the enterprise's own system; the signing secret is shown only now."""
    assert principal.uscc is not None
    subscription = await webhooks.create_webhook(owner=principal.uscc, body=body)
    return WebhookWithSecret.model_validate(subscription, from_attributes=True)


@router.get(
    "/webhooks",
    tags=["webhooks"],
    summary="回调订阅列表 (enterprise)",
    response_model=list[WebhookOut],
    responses=problem_responses(*AUTH_ERRORS),
)
async def list_webhooks(webhooks: Webhooks, principal: Enterprise) -> list[WebhookOut]:
    """The enterprise's own subscriptions."""
    assert principal.uscc is not None
    return [
        WebhookOut.model_validate(w) for w in await webhooks.list_webhooks(owner=principal.uscc)
    ]


@router.get(
    "/webhooks/{webhook_id}",
    tags=["webhooks"],
    summary="回调订阅详情 (enterprise)",
    response_model=WebhookOut,
    responses=problem_responses(*AUTH_ERRORS, WebhookNotFound),
)
async def get_webhook(subscription: WebhookById) -> WebhookOut:
    """One of the enterprise's subscriptions."""
    return WebhookOut.model_validate(subscription)


@router.delete(
    "/webhooks/{webhook_id}",
    tags=["webhooks"],
    summary="删除回调订阅 (enterprise)",
    status_code=204,
    responses=problem_responses(*AUTH_ERRORS, WebhookNotFound),
)
async def delete_webhook(
    webhook_id: uuid.UUID, webhooks: Webhooks, principal: Enterprise
) -> Response:
    """Remove one of the enterprise's subscriptions."""
    assert principal.uscc is not None
    await webhooks.delete_webhook(owner=principal.uscc, webhook_id=webhook_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    tags=["webhooks"],
    summary="轮换回调签名密钥 (enterprise)",
    response_model=WebhookWithSecret,
    responses=problem_responses(*AUTH_ERRORS, WebhookNotFound, ValidationFailed),
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID,
    webhooks: Webhooks,
    principal: Enterprise,
    grace_seconds: Annotated[int, Query(ge=0, le=7 * 86400)] = 86400,
) -> WebhookWithSecret:
    """A new secret; the old one keeps signing beside it for ``grace_seconds``."""
    assert principal.uscc is not None
    subscription = await webhooks.rotate_secret(
        owner=principal.uscc, webhook_id=webhook_id, grace_seconds=grace_seconds
    )
    return WebhookWithSecret.model_validate(subscription, from_attributes=True)


# --- deliveries (staff) -------------------------------------------------------------------


@router.get(
    "/deliveries",
    tags=["deliveries"],
    summary="投递记录与死信列表 (staff)",
    response_model=Page[DeliveryOut],
    responses=problem_responses(InvalidCursor, *AUTH_ERRORS, ValidationFailed),
)
async def list_deliveries(
    deliveries: Deliveries,
    principal: Staff,
    status: DeliveryStatus = DeliveryStatus.DEAD,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Page[DeliveryOut]:
    """Deliveries in a state (default: dead letters) of the caller's jurisdiction, newest first."""
    after = decode_keyset(cursor, datetime, uuid.UUID) if cursor else None
    rows = await deliveries.list_deliveries(
        principal=principal, status=status, limit=limit + 1, after=after
    )
    return page_of(
        [DeliveryOut.model_validate(r) for r in rows[:limit]],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.updated_at.isoformat(), str(last.id)],
    )


def _detail(delivery: Any, history: list[Any]) -> DeliveryDetail:
    return DeliveryDetail.model_validate(
        {
            **DeliveryOut.model_validate(delivery).model_dump(),
            "history": [StatusChangeOut.model_validate(h) for h in history],
        }
    )


@router.get(
    "/deliveries/{delivery_id}",
    tags=["deliveries"],
    summary="投递详情与状态历史 (staff)",
    response_model=DeliveryDetail,
    responses=problem_responses(*AUTH_ERRORS, DeliveryNotFound),
)
async def get_delivery(
    delivery_id: uuid.UUID, deliveries: Deliveries, principal: Staff
) -> DeliveryDetail:
    """One delivery of the caller's jurisdiction with its status history."""
    delivery, history = await deliveries.get_delivery(principal=principal, delivery_id=delivery_id)
    return _detail(delivery, history)


@router.post(
    "/deliveries/{delivery_id}/replay",
    tags=["deliveries"],
    summary="重放死信 (staff)",
    response_model=DeliveryDetail,
    responses=problem_responses(
        *AUTH_ERRORS,
        DeliveryNotFound,
        NotReplayable,
        TemplateRenderFailed,
        TemplateLimitExceeded,
        TemplateNotFound,
    ),
)
async def replay_delivery(
    delivery_id: uuid.UUID, deliveries: Deliveries, principal: Staff
) -> DeliveryDetail:
    """Queue a dead-lettered delivery again."""
    delivery, history = await deliveries.replay(principal=principal, delivery_id=delivery_id)
    return _detail(delivery, history)


# --- SMS receipts (provider) --------------------------------------------------------------


@router.post(
    "/receipts/sms",
    tags=["deliveries"],
    summary="短信状态回执 (SMS provider, HMAC-signed)",
    response_model=DeliveryOut,
    responses=problem_responses(
        InvalidReceipt, ReceiptsDisabled, DeliveryNotFound, ValidationFailed
    ),
)
async def sms_receipt(
    request: Request,
    context: Context,
    deliveries: Deliveries,
    timestamp: Annotated[str, Header(alias="X-Onestop-Timestamp")] = "",
    signature: Annotated[str, Header(alias="X-Onestop-Signature")] = "",
) -> DeliveryOut:
    """A provider's delivery receipt, signed with the shared receipt secret."""
    secret = context.settings.sms_receipt_secret
    if secret is None:
        raise ReceiptsDisabled()
    body = await request.body()
    # Unix seconds: a few ASCII digits (int() of 400 digits works, but no float holds it).
    fresh = (
        0 < len(timestamp) <= 12
        and timestamp.isascii()
        and timestamp.isdigit()
        and abs(time.time() - int(timestamp)) <= 300
    )
    expected = receipt_signature(secret.get_secret_value(), timestamp, body)
    # Bytes: a header may carry any character, and compare_digest takes only ASCII str.
    given = signature.removeprefix("v1=").encode()
    if not fresh or not hmac.compare_digest(expected.encode(), given):
        raise InvalidReceipt("回执签名或时间戳无效")
    try:
        receipt = SmsReceipt.model_validate_json(body)
    except ValidationError as exc:
        raise ValidationFailed(
            "回执格式无效",
            invalid_params=[
                {"name": ".".join(map(str, e["loc"])), "reason": e["msg"]} for e in exc.errors()
            ],
        ) from exc
    delivery = await deliveries.sms_receipt(
        message_id=receipt.message_id,
        delivered=receipt.status is SmsReceiptStatus.DELIVERED,
        error_code=receipt.error_code,
    )
    return DeliveryOut.model_validate(delivery)


# --- templates (admin) --------------------------------------------------------------------


@router.get(
    "/templates",
    tags=["templates"],
    summary="消息模板 (admin)",
    response_model=list[TemplateOut],
    responses=problem_responses(*AUTH_ERRORS),
)
async def list_templates(
    templates: Templates, _admin: Admin, event_type: str | None = None
) -> list[TemplateOut]:
    """Built-in and published template versions."""
    return [
        TemplateOut.model_validate(t) for t in await templates.list_templates(event_type=event_type)
    ]


@router.post(
    "/templates",
    tags=["templates"],
    summary="发布模板新版本 (admin)",
    status_code=201,
    response_model=TemplateOut,
    responses=problem_responses(
        *AUTH_ERRORS, TemplateRenderFailed, TemplateLimitExceeded, ValidationFailed
    ),
)
async def publish_template(
    body: TemplateCreate, templates: Templates, principal: Admin
) -> TemplateOut:
    """Publish the next version of an event type's template on a channel."""
    template = await templates.publish_template(principal=principal, body=body)
    return TemplateOut(
        event_type=template.event_type,
        channel=template.channel,
        version=template.version,
        title=template.title,
        body=template.body,
        sms_template_id=template.sms_template_id,
        builtin=False,
        created_at=template.created_at,
    )


@router.post(
    "/templates/preview",
    tags=["templates"],
    summary="模板预览 (admin)",
    response_model=TemplatePreviewOut,
    responses=problem_responses(
        *AUTH_ERRORS, TemplateNotFound, TemplateRenderFailed, TemplateLimitExceeded
    ),
)
async def preview_template(
    body: TemplatePreviewIn, templates: Templates, _admin: Admin
) -> TemplatePreviewOut:
    """Render the template in force (or a draft) with sample data; a missing variable is a 422."""
    return await templates.preview(body=body)
