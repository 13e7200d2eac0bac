"""One odd event never fails the batch it came in (the relay would resend the batch and hold back
the events behind it) and a direct notice's odd request is a problem, never a 500."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role
from govshared.events import EventType
from govshared.testing import Tokens, problem, random_uscc
from notify.models import Delivery

from ..conftest import application_event, post_events


async def _inbox_titles(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/api/v1/inbox", headers=headers)
    assert response.status_code == 200, response.text
    return [m["title"] for m in response.json()["items"]]


async def test_a_clock_alarm_in_a_state_this_version_does_not_know_still_reaches_staff(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # A newer approval may name a state this notify does not know yet (a roll-out).
    jurisdiction = f"31{uuid.uuid4().int % 10_000:04d}"[:4] + "00"
    alarm = application_event(
        EventType.APPLICATION_CLOCK_WARNING,
        random_uscc(),
        jurisdiction=jurisdiction,
        state="hearing",
        due_on="2026-12-25",
    )
    applicant = random_uscc()
    accepted = application_event(EventType.APPLICATION_ACCEPTED, applicant)
    response = await post_events(client, tokens, [alarm, accepted])
    assert response.status_code == 200, response.text
    assert [r["outcome"] for r in response.json()["results"]] == ["accepted", "accepted"]
    assert await _inbox_titles(client, tokens.enterprise(applicant)) == [
        "受理通知：食盐定点批发企业审批"
    ]
    reviewers = tokens.header(Role.REVIEWER, jurisdiction=jurisdiction)
    assert len(await _inbox_titles(client, reviewers)) == 1


async def test_an_event_whose_jurisdiction_is_not_a_division_code_is_invalid_alone(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    bad = application_event(
        EventType.APPLICATION_SUBMITTED, random_uscc(), jurisdiction="31000000000000000"
    )
    applicant = random_uscc()
    good = application_event(EventType.APPLICATION_ACCEPTED, applicant)
    response = await post_events(client, tokens, [bad, good])
    assert response.status_code == 200, response.text
    assert [r["outcome"] for r in response.json()["results"]] == ["invalid", "accepted"]
    assert "jurisdiction" in response.json()["results"][0]["error"]
    assert await _inbox_titles(client, tokens.enterprise(applicant)) == [
        "受理通知：食盐定点批发企业审批"
    ]


async def test_a_task_for_a_staff_member_with_a_long_subject_reaches_them(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # An identity provider's subject may be long (up to the 200 characters a token may carry).
    subject = "CN=" + "张" * 20 + ",OU=行政审批处,O=上海市市场监督管理局," + uuid.uuid4().hex * 2
    task = application_event(
        EventType.APPLICATION_TASK_TRANSFERRED,
        random_uscc(),
        reason="休假",
        details={"step_name": "初审", "role": "reviewer", "assignee": subject},
    )
    response = await post_events(client, tokens, [task])
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assignee = tokens.header(Role.REVIEWER, jurisdiction="310000", subject=subject)
    assert await _inbox_titles(client, assignee) == ["转办任务：食盐定点批发企业审批（初审）"]


async def test_a_direct_notice_naming_a_channel_twice_goes_once_on_it(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, session: AsyncSession
) -> None:
    uscc = random_uscc()
    response = await client.post(
        "/api/v1/notifications",
        json={
            "recipient_uscc": uscc,
            "event_type": str(EventType.APPLICATION_SUBMITTED),
            "data": {"item_name": "公共场所卫生许可", "application_no": "310000-D-2"},
            "channels": ["inbox", "inbox"],
        },
        headers=tokens.service("approval"),
    )
    assert response.status_code == 202, response.text
    assert [d["channel"] for d in response.json()["deliveries"]] == ["inbox"]
    rows = (await session.scalars(select(Delivery).where(Delivery.recipient == uscc))).all()
    await session.commit()
    assert len(rows) == 1
    assert await _inbox_titles(client, tokens.enterprise(uscc)) == ["申请已提交：公共场所卫生许可"]


async def test_a_direct_notices_free_text_under_a_dates_name_is_shown_as_it_is(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    response = await client.post(
        "/api/v1/notifications",
        json={
            "recipient_uscc": uscc,
            "event_type": str(EventType.APPLICATION_ACCEPTED),
            "data": {
                "item_name": "公共场所卫生许可",
                "application_no": "310000-D-3",
                "due_on": "待定-另行-通知",
            },
            "channels": ["inbox"],
        },
        headers=tokens.service("approval"),
    )
    assert response.status_code == 202, response.text
    inbox = await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))
    assert "待定-另行-通知" in inbox.json()["items"][0]["body"]


async def test_a_direct_notice_on_no_channel_is_refused_not_sent_everywhere(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    response = await client.post(
        "/api/v1/notifications",
        json={
            "recipient_uscc": uscc,
            "event_type": str(EventType.APPLICATION_SUBMITTED),
            "data": {"item_name": "公共场所卫生许可", "application_no": "310000-D-4"},
            "channels": [],
        },
        headers=tokens.service("approval"),
    )
    assert response.status_code == 422, response.text
    assert problem(response)["code"] == "validation_failed"
    assert await _inbox_titles(client, tokens.enterprise(uscc)) == []


async def test_quiet_hours_with_a_utc_offset_are_refused_not_silently_moved(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # 08:00 at UTC-5 is 21:00 in Shanghai: stored as 08:00 local, the hours would not be the
    # ones the enterprise asked for (and the answer to the PUT would differ from the next GET).
    uscc = random_uscc()
    response = await client.put(
        "/api/v1/preferences",
        json={"quiet_start": "22:00:00+08:00", "quiet_end": "08:00:00-05:00"},
        headers=tokens.enterprise(uscc),
    )
    assert response.status_code == 422, response.text
    assert {p["name"] for p in problem(response)["invalid_params"]} >= {  # type: ignore[union-attr]
        "body.quiet_start",
        "body.quiet_end",
    }
    plain = await client.put(
        "/api/v1/preferences",
        json={"quiet_start": "22:00", "quiet_end": "08:00"},
        headers=tokens.enterprise(uscc),
    )
    assert plain.status_code == 200
    assert (plain.json()["quiet_start"], plain.json()["quiet_end"]) == ("22:00:00", "08:00:00")


async def test_a_recipient_no_token_could_name_is_passed_over_not_a_failed_batch(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # A department code or subject longer than any token's claim (200 characters) names no reader.
    marker = uuid.uuid4().hex[:8]
    task = application_event(
        EventType.APPLICATION_TASK_TRANSFERRED,
        random_uscc(),
        reason="休假",
        details={
            "step_name": "初审",
            "role": "reviewer",
            "assignee": "x" * 300,
            "delegates": [f"d-{marker}"],
        },
    )
    applicant = random_uscc()
    accepted = application_event(EventType.APPLICATION_ACCEPTED, applicant)
    response = await post_events(client, tokens, [task, accepted])
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    delegate = tokens.header(Role.REVIEWER, jurisdiction="310000", subject=f"d-{marker}")
    assert await _inbox_titles(client, delegate) == ["转办任务：食盐定点批发企业审批（初审）"]
    assert await _inbox_titles(client, tokens.enterprise(applicant)) == [
        "受理通知：食盐定点批发企业审批"
    ]
