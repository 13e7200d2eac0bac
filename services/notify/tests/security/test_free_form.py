"""Hostile free-form data in notify: template variables and event data are bounded before any work."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from govshared.auth import Role
from govshared.db import mark_read_only
from govshared.events import EventType
from govshared.freeform import EVENT_LIMITS, MAX_STRING_CHARS
from govshared.testing import Tokens, problem, random_uscc
from notify.models import InboxMessage

from ..conftest import application_event, post_events


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep."""
    value: dict[str, Any] = {"leaf": "值"}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def reason_for(response: httpx.Response, name: str) -> str:
    assert response.status_code == 422, response.text
    params = {p["name"]: p["reason"] for p in problem(response)["invalid_params"]}  # type: ignore[union-attr]
    assert name in params, params
    return str(params[name])


async def inbox_count(app: FastAPI, uscc: str) -> int:
    """Messages in the enterprise's inbox (a reader of its own, holding no lock)."""
    async with app.state.sessionmaker() as session:
        await mark_read_only(session)
        count = await session.scalar(
            select(func.count()).select_from(InboxMessage).where(InboxMessage.recipient == uscc)
        )
    return int(count or 0)


async def test_template_variables_of_a_direct_notice_are_bounded(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    uscc = random_uscc()

    async def notify(data: dict[str, Any]) -> httpx.Response:
        return await client.post(
            "/api/v1/notifications",
            json={
                "recipient_uscc": uscc,
                "event_type": str(EventType.APPLICATION_APPROVED),
                "data": data,
                "channels": ["inbox"],
            },
            headers=tokens.service("approval"),
        )

    base = {"item_name": "食品经营许可", "application_no": "310000-FF-1"}
    deep = await notify({**base, "extra": nested(256)})
    assert "嵌套层级" in reason_for(deep, "body.data")
    huge = await notify({**base, "extra": "x" * (MAX_STRING_CHARS + 1)})
    assert "字符串" in reason_for(huge, "body.data")
    many = await notify({**base, **{f"k{i}": i for i in range(5000)}})
    assert "合计" in reason_for(many, "body.data")
    assert await inbox_count(app, uscc) == 0
    fine = await notify(base)
    assert fine.status_code == 202, fine.text
    assert await inbox_count(app, uscc) == 1


async def test_template_preview_data_is_bounded(client: httpx.AsyncClient, tokens: Tokens) -> None:
    refused = await client.post(
        "/api/v1/templates/preview",
        json={
            "event_type": str(EventType.APPLICATION_ACCEPTED),
            "channel": "inbox",
            "data": {"item_name": "x", "application_no": "A-1", "deep": nested(300)},
        },
        headers=tokens.header(Role.ADMIN),
    )
    assert "嵌套层级" in reason_for(refused, "body.data")


async def test_event_data_beyond_the_event_bounds_is_refused_before_any_is_applied(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    uscc = random_uscc()
    fine = application_event(EventType.APPLICATION_ACCEPTED, uscc)
    deep = application_event(
        EventType.APPLICATION_ACCEPTED, uscc, details={"x": nested(EVENT_LIMITS.depth)}
    )
    response = await post_events(client, tokens, [fine, deep])
    assert response.status_code == 422 and problem(response)["code"] == "invalid_event_body"
    assert "嵌套层级" in reason_for(response, "1.data")
    assert await inbox_count(app, uscc) == 0
    # A nesting too deep for the JSON decoder itself is a 422 too, not a 500.
    bottomless = await client.post(
        "/api/v1/events",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={
            "Content-Type": "application/cloudevents-batch+json",
            **tokens.header(Role.SERVICE),
        },
    )
    assert bottomless.status_code == 422, bottomless.text
    assert (await post_events(client, tokens, [fine])).status_code == 200
    assert await inbox_count(app, uscc) == 1


async def test_webhook_event_type_patterns_are_bounded(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    refused = await client.post(
        "/api/v1/webhooks",
        json={"url": "https://erp.example.com/onestop", "event_types": ["cn.gov.*" + "x" * 200]},
        headers=tokens.enterprise(random_uscc()),
    )
    assert refused.status_code == 422, refused.text
    assert reason_for(refused, "body.event_types.0")
