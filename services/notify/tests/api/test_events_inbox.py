"""The platform slice: approval's events become inbox messages, once, for the right enterprise."""

from __future__ import annotations

import json
import secrets

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role
from govshared.events import (
    CLOUDEVENTS_JSON,
    CloudEvent,
    EventType,
    NotificationDeliveredData,
    parse_data,
)
from govshared.testing import Tokens, problem, random_uscc
from notify.db import outbox_events
from notify.models import Delivery, InboxMessage

from ..conftest import DUTY_OFFICER, application_event, post_events


async def inbox(client: httpx.AsyncClient, tokens: Tokens, uscc: str) -> list[dict[str, object]]:
    response = await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_application_event_becomes_inbox_message(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    event = application_event(
        EventType.APPLICATION_SUBMITTED, uscc, application_no="310000-20261128-ABCD1234"
    )
    response = await client.post(
        "/api/v1/events",
        content=json.dumps(event).encode(),
        headers={"Content-Type": CLOUDEVENTS_JSON, **tokens.producer([event])},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 1
    assert result["results"][0]["outcome"] == "accepted"

    messages = await inbox(client, tokens, uscc)
    assert len(messages) == 1
    message = messages[0]
    assert message["body"] == (
        "您的「食盐定点批发企业审批」申请（办件编号 310000-20261128-ABCD1234）已提交，等待受理。"
    )
    assert message["title"] == "申请已提交：食盐定点批发企业审批"
    assert message["is_read"] is False
    assert message["critical"] is False
    assert message["subject"] == event["subject"]


async def test_redelivered_event_creates_nothing_new(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    uscc = random_uscc()
    event = application_event(EventType.APPLICATION_ACCEPTED, uscc)
    first = await post_events(client, tokens, [event])
    assert first.json()["accepted"] == 1
    again = await post_events(client, tokens, [event])
    assert again.status_code == 200
    assert again.json()["duplicates"] == 1
    assert again.json()["results"][0]["outcome"] == "duplicate"

    assert len(await inbox(client, tokens, uscc)) == 1
    deliveries = await session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.event_id == event["id"])
    )
    assert deliveries == 1  # no email, SMS or webhook configured: the inbox only


async def test_batch_delivers_each_event_to_its_enterprise(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first, second = random_uscc(), random_uscc()
    events = [
        application_event(EventType.APPLICATION_SUBMITTED, first),
        application_event(EventType.APPLICATION_ACCEPTED, first),
        application_event(EventType.APPLICATION_SUBMITTED, second),
    ]
    events.append(dict(events[0]))  # the same event twice in one batch
    response = await post_events(client, tokens, events)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["received"] == 4
    assert body["accepted"] == 3
    assert body["duplicates"] == 1

    first_inbox = await inbox(client, tokens, first)
    assert len(first_inbox) == 2
    assert {m["title"] for m in first_inbox} == {
        "申请已提交：食盐定点批发企业审批",
        "受理通知：食盐定点批发企业审批",
    }
    assert len(await inbox(client, tokens, second)) == 1


async def test_one_enterprise_cannot_read_another_enterprises_messages(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    owner, other = random_uscc(), random_uscc()
    await post_events(client, tokens, [application_event(EventType.APPLICATION_REJECTED, owner)])
    message_id = (await inbox(client, tokens, owner))[0]["id"]

    assert await inbox(client, tokens, other) == []
    for response in (
        await client.get(f"/api/v1/inbox/{message_id}", headers=tokens.enterprise(other)),
        await client.post(f"/api/v1/inbox/{message_id}/read", headers=tokens.enterprise(other)),
    ):
        assert response.status_code == 404
        body = problem(response)
        assert body["code"] == "message_not_found"
        assert "body" not in body and "title_en" in body
    count = await client.get("/api/v1/inbox/unread-count", headers=tokens.enterprise(other))
    assert count.json() == {"unread": 0}
    # The owner's message is still unread: the other's attempt changed nothing.
    own = await client.get(f"/api/v1/inbox/{message_id}", headers=tokens.enterprise(owner))
    assert own.status_code == 200
    assert own.json()["is_read"] is False


async def test_auth_problems(client: httpx.AsyncClient, tokens: Tokens) -> None:
    for method, path in (
        ("GET", "/api/v1/inbox"),
        ("GET", "/api/v1/inbox/unread-count"),
        ("POST", "/api/v1/events"),
        ("GET", "/api/v1/deliveries"),
        ("GET", "/api/v1/webhooks"),
        ("POST", "/api/v1/templates/preview"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 401, path
        assert problem(response)["code"] == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"

    garbage = await client.get("/api/v1/inbox", headers={"Authorization": "Bearer not-a-jwt"})
    assert garbage.status_code == 401
    assert problem(garbage)["code"] == "unauthenticated"

    enterprise = tokens.enterprise(random_uscc())
    posted = await post_events(client, tokens, [])  # a service may post an empty batch
    assert posted.status_code == 200
    wrong_role = await client.post(
        "/api/v1/events",
        content=b"[]",
        headers={"Content-Type": "application/cloudevents-batch+json", **enterprise},
    )
    assert wrong_role.status_code == 403
    assert problem(wrong_role)["code"] == "forbidden"
    service_inbox = await client.get("/api/v1/inbox", headers=tokens.header(Role.SERVICE))
    assert service_inbox.status_code == 403
    assert problem(service_inbox)["code"] == "forbidden"


async def test_bad_event_bodies_are_problems_never_500(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    service = tokens.service("approval")
    not_json = await client.post(
        "/api/v1/events",
        content=b"{not json",
        headers={"Content-Type": CLOUDEVENTS_JSON, **service},
    )
    assert not_json.status_code == 422
    assert problem(not_json)["code"] == "invalid_event_body"

    no_id = await client.post(
        "/api/v1/events",
        content=json.dumps(
            [{"type": "x", "source": "/s", "time": "2026-01-01T00:00:00Z"}]
        ).encode(),
        headers={"Content-Type": "application/cloudevents-batch+json", **service},
    )
    assert no_id.status_code == 422
    assert problem(no_id)["invalid_params"]

    wrong_type = await client.post(
        "/api/v1/events", content=b"[]", headers={"Content-Type": "text/plain", **service}
    )
    assert wrong_type.status_code == 415
    assert problem(wrong_type)["code"] == "unsupported_media_type"

    # A known type with bad data is recorded and reported, not retried forever.
    bad = application_event(EventType.APPLICATION_SUBMITTED, random_uscc())
    bad["data"]["applicant_uscc"] = "91350100M000100Y4Z"
    unknown = application_event("cn.gov.approval.thing_to_come.v1", random_uscc())
    response = await post_events(client, tokens, [bad, unknown])
    assert response.status_code == 200
    outcomes = [r["outcome"] for r in response.json()["results"]]
    assert outcomes == ["invalid", "ignored"]

    cursor = await client.get("/api/v1/inbox?cursor=%%%", headers=tokens.enterprise(random_uscc()))
    assert cursor.status_code == 400
    assert problem(cursor)["code"] == "invalid_cursor"


async def test_unread_first_then_newest_with_cursor_pages(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    headers = tokens.enterprise(uscc)
    for event_type in (
        EventType.APPLICATION_SUBMITTED,
        EventType.APPLICATION_ACCEPTED,
        EventType.APPLICATION_PAUSED,
        EventType.APPLICATION_RESUMED,
        EventType.APPLICATION_APPROVED,
    ):
        await post_events(client, tokens, [application_event(event_type, uscc, reason="专家评审")])
    everything = await inbox(client, tokens, uscc)
    assert len(everything) == 5
    oldest = everything[-1]
    assert oldest["title"] == "申请已提交：食盐定点批发企业审批"

    read = await client.post(f"/api/v1/inbox/{oldest['id']}/read", headers=headers)
    assert read.status_code == 200
    assert read.json()["is_read"] is True
    assert read.json()["read_at"] is not None
    again = await client.post(f"/api/v1/inbox/{oldest['id']}/read", headers=headers)
    assert again.json()["read_at"] == read.json()["read_at"]
    count = await client.get("/api/v1/inbox/unread-count", headers=headers)
    assert count.json() == {"unread": 4}

    newest_first = everything[:-1]
    seen: list[object] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/inbox", params=params, headers=headers)).json()
        seen.extend(m["id"] for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [m["id"] for m in newest_first] + [oldest["id"]]


async def test_staff_of_the_jurisdiction_see_new_work(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # A district of its own (a valid 行政区划 code; not 310115, which other tests write to).
    jurisdiction = f"3101{secrets.choice(range(20, 100))}"
    event = application_event(
        EventType.APPLICATION_SUBMITTED, random_uscc(), jurisdiction=jurisdiction
    )
    await post_events(client, tokens, [event])
    acceptor = tokens.staff(Role.ACCEPTOR, jurisdiction)
    items = (await client.get("/api/v1/inbox", headers=acceptor)).json()["items"]
    assert [m["title"] for m in items] == ["新申请待受理：食盐定点批发企业审批"]
    assert "请在五个工作日内受理" in items[0]["body"]
    elsewhere = tokens.staff(Role.ACCEPTOR, "440300")
    assert (await client.get("/api/v1/inbox", headers=elsewhere)).json()["items"] == [] or all(
        m["id"] != items[0]["id"]
        for m in (await client.get("/api/v1/inbox", headers=elsewhere)).json()["items"]
    )
    reviewer = tokens.staff(Role.REVIEWER, jurisdiction)
    assert (await client.get("/api/v1/inbox", headers=reviewer)).json()["items"] == []


async def test_critical_inbox_notice_reports_proof_of_service(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession, app: FastAPI
) -> None:
    uscc = random_uscc()
    event = application_event(
        EventType.APPLICATION_SUPPLEMENT_REQUESTED, uscc, reason="营业执照复印件"
    )
    await post_events(client, tokens, [event])
    message = (await inbox(client, tokens, uscc))[0]
    assert message["critical"] is True
    assert "需要一次性补正材料：营业执照复印件" in str(message["body"])
    rows = (
        await session.execute(
            select(outbox_events).where(outbox_events.c.payload.contains(event["id"]))
        )
    ).all()
    assert [r.destination for r in rows] == ["approval"]
    envelope = json.loads(rows[0].payload)
    assert envelope["type"] == "cn.gov.notify.notification.delivered.v1"
    # The contract: the envelope and its data validate against the shared schemas.
    data = parse_data(CloudEvent.model_validate(envelope))
    assert isinstance(data, NotificationDeliveredData)
    assert envelope["subject"] == event["subject"]
    assert envelope["data"]["channel"] == "inbox"
    assert envelope["data"]["recipient"] == uscc
    assert envelope["data"]["cause_event_id"] == event["id"]
    stored = await session.scalar(select(InboxMessage).where(InboxMessage.event_id == event["id"]))
    assert stored is not None and stored.critical


async def test_openapi_declares_problems(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    inbox_item = schema["paths"]["/api/v1/inbox/{message_id}"]["get"]["responses"]
    assert "404" in inbox_item and "401" in inbox_item
    assert "application/problem+json" in inbox_item["404"]["content"]
    assert "/api/v1/events" in schema["paths"]
    assert "/api/v1/inbox/stream" in schema["paths"]


async def test_a_named_user_is_told_by_rule_and_no_one_else_reads_it(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    event = application_event(
        EventType.APPLICATION_CLOCK_WARNING, random_uscc(), state="accepted", due_on="2026-12-04"
    )  # an accepted case's alarm goes to its reviewers: an approver reads it only when named
    await post_events(client, tokens, [event])
    number = event["data"]["application_no"]
    officer = tokens.header(Role.APPROVER, jurisdiction="310000", subject=DUTY_OFFICER)
    mine = (await client.get("/api/v1/inbox", params={"limit": 100}, headers=officer)).json()[
        "items"
    ]
    assert any(number in m["body"] for m in mine)
    colleague = tokens.header(Role.APPROVER, jurisdiction="310000", subject="approver-other")
    theirs = (await client.get("/api/v1/inbox", params={"limit": 100}, headers=colleague)).json()
    assert not any(number in m["body"] for m in theirs["items"])
    # the applicant is not told of internal clock alarms
    applicant = (
        await client.get(
            "/api/v1/inbox", headers=tokens.enterprise(event["data"]["applicant_uscc"])
        )
    ).json()
    assert applicant["items"] == []


async def test_a_sealed_decision_is_named_in_the_notice(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    document = {
        "id": "d1",
        "kind": "approval_decision",
        "number": "沪经信许〔2026〕000123号",
        "title": "准予行政许可决定书",
        "digest": "0" * 64,
    }
    with_document = application_event(
        EventType.APPLICATION_APPROVED, uscc, details={"document": document}
    )
    without = application_event(EventType.APPLICATION_APPROVED, uscc)
    await post_events(client, tokens, [with_document, without])
    items = (await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))).json()["items"]
    bodies = {m["body"] for m in items}
    assert any(
        "《准予行政许可决定书》（文号 沪经信许〔2026〕000123号）加盖电子印章后将另行向您送达" in b
        for b in bodies
    )
    assert any("文号" not in b for b in bodies)  # a notice without a document still renders
