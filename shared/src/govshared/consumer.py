"""The receiving end of the outbox: one way for every service to read posted CloudEvents.

Relays post structured-mode JSON (one envelope or a batch array); the consumer checks the media type,
the size, and the envelope of each event before any is applied. Applying them exactly once is the
service's job, with ``govshared.inbox`` in the same transaction as the effect.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import ValidationError

from govshared.auth import Principal, Role
from govshared.events import CLOUDEVENTS_BATCH_JSON, CLOUDEVENTS_JSON, CloudEvent
from govshared.freeform import EVENT_LIMITS, json_bounds_error
from govshared.jwks import service_of_subject
from govshared.outbox import parse_batch
from govshared.problems import DomainError, InvalidParam, UnsupportedMediaType

EVENT_MEDIA_TYPES = (CLOUDEVENTS_JSON, CLOUDEVENTS_BATCH_JSON, "application/json")
MAX_EVENTS = 1000
MAX_EVENT_BODY_BYTES = 8 * 1024 * 1024


class InvalidEventBody(DomainError):
    status = 422
    code = "invalid_event_body"
    title = "事件内容不是有效的 CloudEvents 结构化 JSON"
    title_en = "The body is not structured-mode CloudEvents JSON"


class EventBatchTooLarge(DomainError):
    status = 413
    code = "event_batch_too_large"
    title = "事件批次过大"
    title_en = "The event batch is too large"


class EventProducerMismatch(DomainError):
    status = 403
    code = "event_producer_mismatch"
    title = "事件只能由产生它的服务投递"
    title_en = "An event may be posted only by the service that produces it"


EVENT_ERRORS = (UnsupportedMediaType, InvalidEventBody, EventBatchTooLarge, EventProducerMismatch)
SUITE_TYPES = "cn.gov."

# The request body of every ``POST /api/v1/events``, for OpenAPI (``openapi_extra=``).
EVENTS_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            CLOUDEVENTS_JSON: {"schema": {"type": "object"}},
            CLOUDEVENTS_BATCH_JSON: {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


async def read_events(request: Request) -> list[CloudEvent]:
    """The events of a relay's POST; 415, 413 or 422 problems when it is not a valid delivery."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in EVENT_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"请使用 {CLOUDEVENTS_JSON} 或 {CLOUDEVENTS_BATCH_JSON}（收到 {media_type or '无'}）"
        )
    body = await request.body()
    if len(body) > MAX_EVENT_BODY_BYTES:
        raise EventBatchTooLarge(f"请求体超过 {MAX_EVENT_BODY_BYTES} 字节")
    try:
        events = parse_batch(body)
    except ValidationError as exc:
        params = [
            InvalidParam(name=".".join(map(str, e["loc"])), reason=e["msg"]).model_dump()
            for e in exc.errors()[:50]
        ]
        raise InvalidEventBody("事件不符合 CloudEvents 1.0 格式", invalid_params=params) from exc
    except (ValueError, TypeError, RecursionError) as exc:
        # RecursionError: nesting deeper than the JSON decoder follows is not JSON we take.
        raise InvalidEventBody(f"请求体不是有效的 JSON：{str(exc)[:300]}") from exc
    if len(events) > MAX_EVENTS:
        raise EventBatchTooLarge(f"一批最多 {MAX_EVENTS} 个事件")
    # Every event's data within the event bounds, before any is applied (govshared.freeform).
    params = [
        InvalidParam(name=f"{i}.data", reason=error).model_dump()
        for i, event in enumerate(events)
        if (error := json_bounds_error(event.data, EVENT_LIMITS)) is not None
    ]
    if params:
        raise InvalidEventBody("事件数据超出允许的规模", invalid_params=params[:50])
    check_producer(events, getattr(request.state, "principal", None))
    return events


def producer_of(event_type: str) -> str | None:
    """The service whose event type this is (``cn.gov.<service>.…``); None outside the suite's
    namespace."""
    return event_type.split(".")[2] if event_type.startswith(SUITE_TYPES) else None


def check_producer(events: list[CloudEvent], principal: Principal | None) -> None:
    """Refuse (403) a batch holding an event its caller does not produce.

    A service token speaks for one service (``service:<name>``, its key bound to that name), and a
    service posts only its own events: each event's ``source`` is ``/services/<name>``, and a type of
    the suite's namespace is ``cn.gov.<name>.…``. So a service cannot make another believe that a
    third one decided something (notify cannot post approval's ``approved`` to license).
    """
    name = service_of_subject(principal.subject if principal is not None else None)
    for i, event in enumerate(events):
        if (
            name is None
            or event.source != f"/services/{name}"
            or producer_of(event.type) not in (None, name)
        ):
            raise EventProducerMismatch(
                f"第 {i} 个事件（{event.type[:100]}，来源 {event.source[:100]}）"
                f"不是调用方 {(principal.subject if principal else '')[:100] or '（无）'} 产生的事件",
                index=i,
            )


def check_event_type(event_type: str, principal: Principal) -> None:
    """Refuse (403) a service asking for a notice of another service's event type: license cannot
    have notify send an enterprise approval's 准予许可 (``POST /api/v1/notifications``). Staff
    (admins) and types outside the suite's namespace are not a service speaking for another."""
    caller = service_of_subject(principal.subject)
    if principal.role is Role.SERVICE and producer_of(event_type) not in (None, caller):
        raise EventProducerMismatch(
            f"事件类型 {event_type[:100]} 不是调用方 {principal.subject[:100]} 产生的事件",
            event_type=event_type[:200],
        )
