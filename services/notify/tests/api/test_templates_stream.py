"""Admin templates (versions and preview), the SSE stream, and the workers run by the lifespan."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import notify.inbox
import notify.intake
from govshared.auth import Role
from govshared.events import EventType
from govshared.pagination import decode_keyset, encode_cursor
from govshared.testing import Tokens, problem, random_uscc
from notify.main import create_app

from ..conftest import MailSink, Outside, application_event, make_settings, post_events

WITHDRAWN = str(EventType.APPLICATION_WITHDRAWN)


async def test_preview_renders_and_fails_visibly(client: httpx.AsyncClient, tokens: Tokens) -> None:
    admin = tokens.header(Role.ADMIN)
    ok = await client.post(
        "/api/v1/templates/preview",
        json={
            "event_type": str(EventType.APPLICATION_ACCEPTED),
            "channel": "sms",
            "data": {"item_name": "食品经营许可", "application_no": "A-1"},
        },
        headers=admin,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "version": 1,
        "title": None,
        "body": "您的食品经营许可申请A-1已受理。",
        "sms_template_id": "SMS_ACCEPTED",
        "sms_params": {"application_no": "A-1", "item_name": "食品经营许可"},
    }
    missing = await client.post(
        "/api/v1/templates/preview",
        json={"event_type": WITHDRAWN, "channel": "inbox", "data": {"item_name": "x"}},
        headers=admin,
    )
    assert missing.status_code == 422
    assert problem(missing)["code"] == "template_render_failed"
    assert "application_no" in str(problem(missing)["detail"])
    staff = await client.post(
        "/api/v1/templates/preview",
        json={"event_type": WITHDRAWN, "channel": "inbox"},
        headers=tokens.staff(Role.HEAD),
    )
    assert staff.status_code == 403


async def test_preview_of_an_sms_draft_with_an_optional_variable(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.post(
        "/api/v1/templates/preview",
        json={
            "event_type": str(EventType.APPLICATION_ACCEPTED),
            "channel": "sms",
            "body": "{{ item_name }}已受理{% if download_url is defined %}：{{ download_url }}"
            "{% endif %}{{ note|default('') }}",
            "data": {"item_name": "食品经营许可"},
        },
        headers=tokens.header(Role.ADMIN),
    )
    assert response.status_code == 200, response.text
    assert response.json()["body"] == "食品经营许可已受理"
    assert response.json()["sms_params"] == {
        "item_name": "食品经营许可",
        "download_url": "",
        "note": "",
    }


async def test_published_version_is_used_and_a_broken_one_dead_letters(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    admin = tokens.header(Role.ADMIN)
    bad_syntax = await client.post(
        "/api/v1/templates",
        json={"event_type": WITHDRAWN, "channel": "inbox", "body": "{% if %}"},
        headers=admin,
    )
    assert bad_syntax.status_code == 422
    published = await client.post(
        "/api/v1/templates",
        json={
            "event_type": WITHDRAWN,
            "channel": "inbox",
            "title": "撤回确认：{{ item_name }}",
            "body": "办件 {{ application_no }} 已按您的要求撤回。",
        },
        headers=admin,
    )
    assert published.status_code == 201, published.text
    version = published.json()["version"]
    assert version >= 2
    listed = await client.get("/api/v1/templates", params={"event_type": WITHDRAWN}, headers=admin)
    assert {(t["channel"], t["version"]) for t in listed.json()} >= {
        ("inbox", 1),
        ("inbox", version),
    }

    uscc = random_uscc()
    event = application_event(EventType.APPLICATION_WITHDRAWN, uscc, application_no="W-1")
    await post_events(client, tokens, [event])
    items = (await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))).json()["items"]
    assert [(m["title"], m["body"]) for m in items] == [
        ("撤回确认：食盐定点批发企业审批", "办件 W-1 已按您的要求撤回。")
    ]

    # A template that needs a variable the event lacks: no half-empty message, a dead letter.
    await client.post(
        "/api/v1/templates",
        json={"event_type": WITHDRAWN, "channel": "inbox", "body": "{{ no_such_field }}"},
        headers=admin,
    )
    other = random_uscc()
    broken = application_event(EventType.APPLICATION_WITHDRAWN, other, jurisdiction="310101")
    response = await post_events(client, tokens, [broken])
    assert response.json()["results"][0]["outcome"] == "accepted"
    assert (await client.get("/api/v1/inbox", headers=tokens.enterprise(other))).json()[
        "items"
    ] == []
    staff = tokens.staff(Role.ACCEPTOR, "310101")
    dead = (await client.get("/api/v1/deliveries", headers=staff)).json()["items"]
    mine = [d for d in dead if d["event_id"] == broken["id"]]
    assert len(mine) == 1
    assert "no_such_field" in mine[0]["last_error"]
    # Fix the template, replay: the message is rendered now and delivered.
    await client.post(
        "/api/v1/templates",
        json={
            "event_type": WITHDRAWN,
            "channel": "inbox",
            "body": "办件 {{ application_no }} 已撤回。",
        },
        headers=admin,
    )
    replayed = await client.post(f"/api/v1/deliveries/{mine[0]['id']}/replay", headers=staff)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["status"] == "delivered"
    items = (await client.get("/api/v1/inbox", headers=tokens.enterprise(other))).json()["items"]
    assert [m["body"] for m in items] == [f"办件 {broken['data']['application_no']} 已撤回。"]


def sse_events(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        if "data" in fields:
            events.append(fields)
    return events


async def test_stream_pushes_new_messages_and_resumes(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    uscc = random_uscc()
    headers = tokens.enterprise(uscc)

    async def publish_later() -> None:
        await asyncio.sleep(0.2)
        await post_events(client, tokens, [application_event(EventType.APPLICATION_ACCEPTED, uscc)])

    # ASGITransport buffers the whole response: the stream ends after sse_max_seconds. The first
    # stream stays open 5 s, room for the event to be posted while it is open even on a loaded
    # machine (make test runs in parallel); the others end after the suite's 1 s.
    with monkeypatch.context() as patched:
        patched.setattr(app.state.settings, "sse_max_seconds", 5.0)
        streamed, _ = await asyncio.gather(
            client.get("/api/v1/inbox/stream", headers=headers), publish_later()
        )
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse_events(streamed.text)
    assert len(events) == 1
    assert events[0]["event"] == "message"
    assert json.loads(events[0]["data"])["title"] == "受理通知：食盐定点批发企业审批"

    await post_events(client, tokens, [application_event(EventType.APPLICATION_APPROVED, uscc)])
    resumed = await client.get(
        "/api/v1/inbox/stream", headers={**headers, "Last-Event-ID": events[0]["id"]}
    )
    titles = [json.loads(e["data"])["title"] for e in sse_events(resumed.text)]
    assert titles == ["准予行政许可决定：食盐定点批发企业审批"]

    other = await client.get("/api/v1/inbox/stream", headers=tokens.enterprise(random_uscc()))
    assert sse_events(other.text) == []
    anonymous = await client.get("/api/v1/inbox/stream")
    assert anonymous.status_code == 401
    bad_resume = await client.get(
        "/api/v1/inbox/stream", headers={**headers, "Last-Event-ID": "not-a-cursor"}
    )
    assert bad_resume.status_code == 400
    assert problem(bad_resume)["code"] == "invalid_cursor"


async def test_stream_delivers_more_messages_than_a_page_within_its_look_back(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More new messages than one read of the stream holds, all within its look-back window:
    each page is read in turn. Before, every poll read the same first page (all seen) and the
    messages after it never came."""
    monkeypatch.setattr(notify.inbox, "STREAM_PAGE", 5)
    uscc = random_uscc()
    headers = tokens.enterprise(uscc)
    first = await post_events(
        client, tokens, [application_event(EventType.APPLICATION_ACCEPTED, uscc)]
    )
    assert first.status_code == 200, first.text
    opened = sse_events((await client.get("/api/v1/inbox/stream", headers=headers)).text)
    assert len(opened) == 1
    more = [application_event(EventType.APPLICATION_ACCEPTED, uscc) for _ in range(13)]
    assert (await post_events(client, tokens, more)).status_code == 200
    resumed = await client.get(
        "/api/v1/inbox/stream", headers={**headers, "Last-Event-ID": opened[0]["id"]}
    )
    ids = [json.loads(e["data"])["id"] for e in sse_events(resumed.text)]
    assert len(ids) == len(set(ids)) == 13


async def stream(
    client: httpx.AsyncClient, headers: dict[str, str], last_event_id: str | None = None
) -> list[dict[str, str]]:
    """One connection of the stream (it ends after the suite's ``sse_max_seconds``)."""
    resume = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    response = await client.get("/api/v1/inbox/stream", headers={**headers, **resume})
    assert response.status_code == 200, response.text
    return sse_events(response.text)


def message_ids(events: list[dict[str, str]]) -> list[str]:
    return [json.loads(e["data"])["id"] for e in events]


async def test_a_message_stamped_earlier_that_commits_after_a_read_is_streamed_on_resume(
    client: httpx.AsyncClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two intakes commit out of the order of their stamps around a reconnect: the one that
    stamped its message first commits after the stream read the other's. Positioned by
    (created_at, id), the resumed stream skipped it (everything at or before the Last-Event-ID's
    time); positioned by commit order it comes, and nothing comes twice."""
    uscc = random_uscc()
    headers = tokens.enterprise(uscc)
    stamped_first = datetime.now(UTC)  # the slow intake's transaction stamps its time now
    fast = await post_events(
        client, tokens, [application_event(EventType.APPLICATION_ACCEPTED, uscc)]
    )
    assert fast.status_code == 200, fast.text
    first = await stream(client, headers)
    assert len(first) == 1
    with monkeypatch.context() as patched:  # ... and commits only now
        patched.setattr(notify.intake, "utcnow", lambda: stamped_first)
        slow = await post_events(
            client, tokens, [application_event(EventType.APPLICATION_APPROVED, uscc)]
        )
    assert slow.status_code == 200, slow.text
    listed = (await client.get("/api/v1/inbox", headers=headers)).json()["items"]
    by_title = {m["title"]: m for m in listed}
    late = by_title["准予行政许可决定：食盐定点批发企业审批"]
    early = by_title["受理通知：食盐定点批发企业审批"]
    # Stamped before the message already sent.
    assert datetime.fromisoformat(late["created_at"]) < datetime.fromisoformat(early["created_at"])

    resumed = await stream(client, headers, first[-1]["id"])
    assert message_ids(resumed) == [late["id"]]
    assert sorted(message_ids(first + resumed)) == sorted([early["id"], late["id"]])
    # Resuming after the late message's own id: nothing more.
    assert await stream(client, headers, resumed[-1]["id"]) == []


async def test_a_last_event_id_of_the_streams_before_positions_still_resumes(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A browser that connected before the upgrade sends the old id, a message's (created_at, id):
    the stream resumes after that message; an old id naming no message of the caller's resumes
    at its time less the old look-back window (sent again rather than lost)."""
    uscc = random_uscc()
    headers = tokens.enterprise(uscc)
    for kind in (EventType.APPLICATION_ACCEPTED, EventType.APPLICATION_APPROVED):
        response = await post_events(client, tokens, [application_event(kind, uscc)])
        assert response.status_code == 200, response.text
    listed = (await client.get("/api/v1/inbox", headers=headers)).json()["items"]
    older, newer = sorted(listed, key=lambda m: (m["created_at"], m["id"]))

    def old_id(created_at: str, ident: str) -> str:
        return encode_cursor([created_at, ident])

    after_older = await stream(client, headers, old_id(older["created_at"], older["id"]))
    assert message_ids(after_older) == [newer["id"]]
    assert await stream(client, headers, old_id(newer["created_at"], newer["id"])) == []
    # Not the caller's message (another enterprise's, or none): by time, 10 s back.
    other = random_uscc()
    await post_events(client, tokens, [application_event(EventType.APPLICATION_ACCEPTED, other)])
    [theirs] = (await client.get("/api/v1/inbox", headers=tokens.enterprise(other))).json()["items"]
    by_time = await stream(client, headers, old_id(newer["created_at"], theirs["id"]))
    assert sorted(message_ids(by_time)) == sorted([older["id"], newer["id"]])
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    long_ago = await stream(client, headers, old_id(an_hour_ago, str(uuid.uuid4())))
    assert sorted(message_ids(long_ago)) == sorted([older["id"], newer["id"]])
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert await stream(client, headers, old_id(later, str(uuid.uuid4()))) == []
    # The stream's own ids are the same form: one resumes after the newer message.
    assert decode_keyset(after_older[-1]["id"], datetime, uuid.UUID) == (
        datetime.fromisoformat(newer["created_at"]),
        uuid.UUID(newer["id"]),
    )
    assert await stream(client, headers, after_older[-1]["id"]) == []


async def test_lifespan_workers_deliver_and_report_proof_of_service(
    database_url: str,
    tokens: Tokens,
    tmp_path: Path,
    smtp: tuple[MailSink, int],
    outside: Outside,
) -> None:
    sink, port = smtp
    settings = make_settings(
        database_url,
        tokens,
        tmp_path,
        run_workers=True,
        smtp_host="127.0.0.1",
        smtp_port=port,
        approval_events_url=f"{outside.base_url}/approval/api/v1/events",
        relay_poll_seconds=0.05,
        delivery_poll_seconds=0.05,
    )
    app: FastAPI = create_app(settings)
    uscc = random_uscc()
    address = f"live-{uscc.lower()}@example.com"
    event = application_event(EventType.APPLICATION_ACCEPTED, uscc)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notify.test") as client:
            await client.put(
                "/api/v1/preferences", json={"email": address}, headers=tokens.enterprise(uscc)
            )
            await post_events(client, tokens, [event])
            for _ in range(200):
                proofs = [
                    e for e in outside.approval_events if e["data"]["cause_event_id"] == event["id"]
                ]
                if sink.to(address) and len(proofs) == 2:
                    break
                await asyncio.sleep(0.05)
    assert len(sink.to(address)) == 1
    assert {p["data"]["channel"] for p in proofs} == {"inbox", "email"}
    assert all(p["type"] == "cn.gov.notify.notification.delivered.v1" for p in proofs)
