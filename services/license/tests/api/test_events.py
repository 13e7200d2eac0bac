"""The CloudEvents consumer: issuance from approval's approved event, exactly once per event id."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role
from govshared.events import (
    CLOUDEVENTS_JSON,
    EventType,
    LicenceEventData,
    NotificationDeliveredData,
    ReformMode,
    make_event,
)
from govshared.testing import Tokens, problem, random_uscc
from licensing import clock
from licensing.context import context_of
from licensing.db import inbox_events, outbox_events
from licensing.models import Licence, LicenceHistory, VerificationTask

Deliver = Callable[..., Awaitable[httpx.Response]]


async def _licences_of(session: AsyncSession, uscc: str) -> list[Licence]:
    return list((await session.scalars(select(Licence).where(Licence.holder_uscc == uscc))).all())


async def _listed(client: httpx.AsyncClient, tokens: Tokens, uscc: str) -> list[dict[str, Any]]:
    """The enterprise's licences as the register lists them (read through the API: the test's
    own session would keep SQLite's snapshot from before the delivery)."""
    listed = await client.get(f"/api/v1/enterprises/{uscc}/licences", headers=tokens.service())
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def test_approved_event_issues_a_licence_with_its_event(
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
    app: FastAPI,
    session: AsyncSession,
) -> None:
    uscc = random_uscc()
    event = new_event(
        uscc=uscc, item_code="JXW-XK-002", details={"particulars": {"仓储地址": "申江路1号"}}
    )
    response = await deliver(event)
    # The issued event goes out once the licence's certificate is sealed (by the worker).
    assert (await context_of(app).sealer.run_once()).sealed >= 1
    assert response.status_code == 200, response.text
    assert response.json() == {
        "received": 1,
        "processed": 1,
        "duplicates": 0,
        "ignored": 0,
        "invalid": 0,
        "refused": 0,
    }
    [licence] = await _licences_of(session, uscc)
    assert licence.licence_type == "salt_wholesale_certificate"
    assert licence.status == "valid" and licence.is_current and licence.version == 1
    assert licence.holder_name == "上海盐业示范有限公司"
    assert licence.source_application_id == uuid.UUID(event["data"]["application_id"])
    assert licence.source_event_id == event["id"]
    assert licence.particulars == {"仓储地址": "申江路1号"}
    assert licence.valid_until is not None
    assert (licence.valid_until - licence.valid_from).days in range(1825, 1828)  # 5 years
    assert licence.licence_no.startswith(f"YDP-{licence.issued_on.year}-")

    history = (
        await session.scalars(select(LicenceHistory).where(LicenceHistory.licence_id == licence.id))
    ).all()
    assert [h.action for h in history] == ["issued"]
    rows = (
        await session.execute(
            select(outbox_events).where(outbox_events.c.payload.contains(licence.licence_no))
        )
    ).all()
    assert {r.destination for r in rows} == {"notify", "approval"}
    envelope = json.loads(rows[0].payload)
    assert envelope["type"] == EventType.LICENCE_ISSUED
    data = LicenceEventData.model_validate(envelope["data"])
    assert data.application_id == licence.source_application_id
    assert data.holder_uscc == uscc
    assert data.document is not None and data.document.number == licence.licence_no
    # notify's texts name the type as people know it, never by its code.
    assert data.licence_type == "salt_wholesale_certificate"
    assert data.licence_type_name == data.document.title == "食盐定点批发企业证书"


async def test_redelivered_event_issues_nothing(
    deliver: Deliver, new_event: Callable[..., dict[str, Any]], session: AsyncSession
) -> None:
    uscc = random_uscc()
    event = new_event(uscc=uscc)
    first = await deliver(event)
    again = await deliver(event, event)
    assert first.json()["processed"] == 1
    assert again.json() == {
        "received": 2,
        "processed": 0,
        "duplicates": 2,
        "ignored": 0,
        "invalid": 0,
        "refused": 0,
    }
    assert len(await _licences_of(session, uscc)) == 1
    recorded = await session.scalar(
        select(func.count()).select_from(inbox_events).where(inbox_events.c.event_id == event["id"])
    )
    assert recorded == 1


async def test_a_second_event_for_the_same_application_issues_nothing(
    deliver: Deliver, new_event: Callable[..., dict[str, Any]], session: AsyncSession
) -> None:
    uscc = random_uscc()
    application_id = uuid.uuid4()
    await deliver(new_event(uscc=uscc, application_id=application_id))
    await deliver(new_event(uscc=uscc, application_id=application_id))
    assert len(await _licences_of(session, uscc)) == 1


async def test_one_envelope_unknown_types_and_items_without_licence(
    client: httpx.AsyncClient,
    tokens: Tokens,
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
    session: AsyncSession,
) -> None:
    uscc = random_uscc()
    single = await client.post(
        "/api/v1/events",
        content=json.dumps(
            new_event(uscc=uscc, event_type=EventType.APPLICATION_SUBMITTED, state="submitted")
        ),
        headers={**tokens.service("approval"), "Content-Type": CLOUDEVENTS_JSON},
    )
    assert single.status_code == 200, single.text
    assert single.json()["processed"] == 1
    unknown = {
        **new_event(uscc=uscc),
        "id": str(uuid.uuid4()),
        "type": "cn.gov.approval.thing_to_come.v1",
    }
    filing = new_event(
        uscc=uscc, item_code="JXW-BA-010", reform_mode=ReformMode.FILING, state="approved"
    )
    bad_data = {**new_event(uscc=uscc), "id": str(uuid.uuid4()), "data": {"application_id": "x"}}
    response = await deliver(unknown, filing, bad_data)
    assert response.json() == {
        "received": 3,
        "processed": 1,
        "duplicates": 0,
        "ignored": 1,
        "invalid": 1,
        "refused": 0,
    }
    assert await _licences_of(session, uscc) == []
    recorded = await session.scalar(
        select(func.count())
        .select_from(inbox_events)
        .where(inbox_events.c.event_id.in_([unknown["id"], bad_data["id"]]))
    )
    assert recorded == 2


async def test_commitment_grant_schedules_a_verification_drawn_at_random(
    deliver: Deliver, new_event: Callable[..., dict[str, Any]], session: AsyncSession
) -> None:
    uscc = random_uscc()
    await deliver(new_event(uscc=uscc, item_code="JXW-CN-012", reform_mode=ReformMode.COMMITMENT))
    [licence] = await _licences_of(session, uscc)
    assert licence.granted_on_commitment
    [task] = (
        await session.scalars(select(VerificationTask).where(VerificationTask.holder_uscc == uscc))
    ).all()
    assert task.licence_no == licence.licence_no
    assert task.status == "open"
    assert (task.due_on - licence.issued_on).days == 60
    # The tests draw every grant (share 1.0): an on-site check by two inspectors drawn at random.
    assert task.drawn and task.method == "on_site" and len(task.inspectors) == 2


async def test_events_endpoint_is_for_services_only(
    client: httpx.AsyncClient, tokens: Tokens, new_event: Callable[..., dict[str, Any]]
) -> None:
    body = json.dumps([new_event(uscc=random_uscc())])
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    anonymous = await client.post("/api/v1/events", content=body, headers=headers)
    assert anonymous.status_code == 401
    assert problem(anonymous)["code"] == "unauthenticated"
    for who in (tokens.staff(Role.ADMIN), tokens.enterprise(random_uscc())):
        denied = await client.post("/api/v1/events", content=body, headers={**headers, **who})
        assert denied.status_code == 403
        assert problem(denied)["code"] == "forbidden"


async def test_malformed_deliveries_are_4xx_problems(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    headers = {**tokens.service("approval"), "Content-Type": "application/cloudevents-batch+json"}
    for body in (b"not json", b'[{"id": "x"}]', b"42", b'{"specversion": "0.3"}'):
        response = await client.post("/api/v1/events", content=body, headers=headers)
        assert response.status_code == 422, body
        assert problem(response)["code"] == "invalid_event_body"
    wrong_type = await client.post(
        "/api/v1/events",
        content=b"[]",
        headers={**tokens.service(), "Content-Type": "text/plain"},
    )
    assert wrong_type.status_code == 415
    assert problem(wrong_type)["code"] == "unsupported_media_type"
    empty = await client.post("/api/v1/events", content=b"[]", headers=headers)
    assert empty.status_code == 200
    assert empty.json()["received"] == 0


async def test_approved_change_and_renewal_apply_to_the_held_licence(
    client: httpx.AsyncClient,
    tokens: Tokens,
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uscc = random_uscc()
    await deliver(new_event(uscc=uscc))
    [licence] = await _licences_of(session, uscc)
    change = new_event(
        uscc=uscc,
        applicant_name="上海盐业更名有限公司",
        details={"business_type": "change", "particulars": {"仓储地址": "新址"}},
    )
    assert (await deliver(change)).json()["processed"] == 1
    assert licence.valid_until is not None
    monkeypatch.setattr(clock, "today", lambda: licence.valid_until - timedelta(days=5))
    renew = new_event(
        uscc=uscc, details={"business_type": "renew", "licence_no": licence.licence_no}
    )
    assert (await deliver(renew)).json()["processed"] == 1
    detail = (
        await client.get(f"/api/v1/licences/{licence.licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    assert [(v["version"], v["status"]) for v in detail["versions"]] == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "valid"),
    ]
    assert detail["holder_name"] == "上海盐业更名有限公司"
    assert detail["particulars"] == {"仓储地址": "新址"}
    assert detail["valid_from"] == (licence.valid_until + timedelta(days=1)).isoformat()
    # A renewal for a licence the applicant does not hold changes nothing.
    stranger = new_event(
        uscc=random_uscc(), details={"business_type": "renew", "licence_no": licence.licence_no}
    )
    assert (await deliver(stranger)).json()["processed"] == 1
    after = (
        await client.get(f"/api/v1/licences/{licence.licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    assert after["version"] == 3


async def test_an_event_the_register_refuses_does_not_hold_back_the_rest_of_its_delivery(
    client: httpx.AsyncClient,
    tokens: Tokens,
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
    session: AsyncSession,
    serve_penalty_notice: Callable[..., Awaitable[dict[str, date]]],
) -> None:
    # A change approved in approval that the register cannot apply (its particulars beyond what
    # a licence may carry, which events bound more loosely). Answering an error would roll back
    # the whole delivery and the relay would send it again and again, holding back every event
    # delivered with it (here: another licence).
    uscc = random_uscc()
    await deliver(new_event(uscc=uscc))
    [licence] = await _licences_of(session, uscc)
    change = new_event(
        uscc=uscc,
        applicant_name="上海盐业更名有限公司",
        details={"business_type": "change", "particulars": {"仓储地址": "新址" * 5000}},
    )
    other_uscc = random_uscc()
    delivery = [change, new_event(uscc=other_uscc)]
    response = await deliver(*delivery)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "received": 2,
        "processed": 1,
        "duplicates": 0,
        "ignored": 0,
        "invalid": 0,
        "refused": 1,
    }
    assert len(await _listed(client, tokens, other_uscc)) == 1
    held = (
        await client.get(f"/api/v1/licences/{licence.licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    assert (held["version"], held["status"], held["holder_name"]) == (
        1,
        "valid",
        licence.holder_name,
    )
    # Redelivered (the relay never got the answer): both are recorded, nothing is applied twice.
    again = await deliver(*delivery)
    assert again.json()["duplicates"] == 2 and again.json()["refused"] == 0


async def test_a_renewal_submission_arriving_after_its_decision_opens_nothing(
    client: httpx.AsyncClient,
    tokens: Tokens,
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
    session: AsyncSession,
) -> None:
    # A relay's retry can deliver approval's events out of order. A renewal's submission arriving
    # after its denial, or after its approval renewed the licence, must not leave a renewal
    # pending: a timely one pending at expiry is deemed granted (Art. 50).
    renew = {"business_type": "renew"}
    for decided_as in ("denied", "approved"):
        uscc = random_uscc()
        await deliver(new_event(uscc=uscc))
        [licence] = await _listed(client, tokens, uscc)
        application_id = uuid.uuid4()
        submitted = new_event(
            uscc=uscc,
            application_id=application_id,
            event_type=EventType.APPLICATION_SUBMITTED,
            state="submitted",
            details=renew,
        )
        decided = new_event(
            uscc=uscc,
            application_id=application_id,
            event_type=(
                EventType.APPLICATION_DENIED
                if decided_as == "denied"
                else EventType.APPLICATION_APPROVED
            ),
            state=decided_as,
            details=renew,
        )
        assert (await deliver(decided)).json()["processed"] == 1
        assert (await deliver(submitted)).json()["processed"] == 1  # the late one
        held = (
            await client.get(
                f"/api/v1/licences/{licence['licence_no']}", headers=tokens.enterprise(uscc)
            )
        ).json()
        assert held["renewal_requested_on"] is None, decided_as
        assert held["version"] == (2 if decided_as == "approved" else 1)


async def test_notifys_proof_of_service_joins_the_licences_history(
    client: httpx.AsyncClient,
    tokens: Tokens,
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
) -> None:
    # A suspension, a revocation or a penalty notice must be shown to have reached the holder:
    # notify's proof of service of a licence's notice is recorded with the licence.
    uscc = random_uscc()
    await deliver(new_event(uscc=uscc))
    [licence] = await _listed(client, tokens, uscc)

    def proof(subject: str) -> dict[str, Any]:
        event = make_event(
            type=EventType.NOTIFICATION_DELIVERED,
            source="/services/notify",
            subject=subject,
            data=NotificationDeliveredData(
                notification_id=uuid.uuid4(),
                cause_event_id=str(uuid.uuid4()),
                cause_event_type="cn.gov.license.licence.suspended.v1",
                subject=subject,
                channel="sms",
                recipient="138****0000",
                delivered_at=datetime.now(UTC),
            ),
        )
        return dict(event.model_dump(mode="json"))

    served = proof(licence["licence_no"])
    intake = await deliver(served, proof("NO-SUCH-LICENCE"))
    assert (intake.json()["processed"], intake.json()["invalid"]) == (1, 1), intake.text
    assert (await deliver(served)).json()["duplicates"] == 1
    history = (
        await client.get(
            f"/api/v1/licences/{licence['licence_no']}", headers=tokens.enterprise(uscc)
        )
    ).json()["history"]
    entries = [h for h in history if h["action"] == "notice_served"]
    assert len(entries) == 1


async def _waiting_on_locks(session: AsyncSession) -> int:
    """How many of this database's backends wait for a lock (PostgreSQL; each read in a
    transaction of its own, as a transaction keeps its first snapshot of pg_stat_activity)."""
    waiting = await session.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )
    await session.rollback()
    return int(waiting or 0)


async def test_two_changes_approved_at_once_are_both_applied(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
    database_url: str,
) -> None:
    """Two changes of one licence approved in approval and delivered at the same moment (two relay
    replicas): each reads the licence before the other writes it. The one that writes second
    found the version it read superseded meanwhile and was refused for good as a register
    refusal (logged, never redelivered): the holder's approved 变更 (Art. 49) was never made."""
    uscc = random_uscc()
    await deliver(new_event(uscc=uscc))
    [listed] = await _listed(client, tokens, uscc)
    licence_no = listed["licence_no"]
    changes = [
        new_event(uscc=uscc, details={"business_type": "change", "particulars": particulars})
        for particulars in ({"仓储地址": "新址"}, {"仓储面积": "800平方米"})
    ]
    if database_url.startswith("postgresql"):
        # Hold the licence's row so that both deliveries read it, then both wait to write it.
        async with app.state.sessionmaker() as holder, holder.begin():
            await holder.execute(
                select(Licence.id)
                .where(Licence.licence_no == licence_no, Licence.is_current)
                .with_for_update()
            )
            both = asyncio.gather(*(deliver(change) for change in changes))
            async with app.state.sessionmaker() as watcher:
                for _ in range(200):
                    if await _waiting_on_locks(watcher) >= 2:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the two deliveries never waited for the licence")
        responses = await both
    else:
        responses = await asyncio.gather(*(deliver(change) for change in changes))
    for response in responses:
        assert response.status_code == 200, response.text
        assert (response.json()["processed"], response.json()["refused"]) == (1, 0)
    detail = (
        await client.get(f"/api/v1/licences/{licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    assert detail["version"] == 3
    assert detail["particulars"] == {"仓储地址": "新址", "仓储面积": "800平方米"}


async def test_a_renewal_applied_for_while_a_change_is_applied_is_not_lost(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
    database_url: str,
) -> None:
    """The holder applies for renewal (Art. 50) while approval's approved change of the licence is
    being applied: the change read the licence before the renewal was recorded and wrote its new
    version from that read, without the renewal. The holder had its 200, the register no pending
    renewal: nothing protected the licence at expiry."""
    uscc = random_uscc()
    await deliver(new_event(uscc=uscc))
    [listed] = await _listed(client, tokens, uscc)
    licence_no = listed["licence_no"]
    change = new_event(
        uscc=uscc, details={"business_type": "change", "particulars": {"仓储地址": "新址"}}
    )
    holder_token = tokens.enterprise(uscc)
    renew = f"/api/v1/licences/{licence_no}/renewal"
    if database_url.startswith("postgresql"):
        # Both read the licence, then queue for its row: the renewal first, the change after it.
        async with app.state.sessionmaker() as holder, holder.begin():
            await holder.execute(
                select(Licence.id)
                .where(Licence.licence_no == licence_no, Licence.is_current)
                .with_for_update()
            )
            async with app.state.sessionmaker() as watcher:

                async def queued(count: int) -> None:
                    for _ in range(200):
                        if await _waiting_on_locks(watcher) >= count:
                            return
                        await asyncio.sleep(0.05)
                    raise AssertionError(f"{count} requests never waited for the licence")

                renewal = asyncio.ensure_future(client.post(renew, headers=holder_token))
                await queued(1)
                delivery = asyncio.ensure_future(deliver(change))
                await queued(2)
        requested, delivered = await renewal, await delivery
    else:
        requested = await client.post(renew, headers=holder_token)
        delivered = await deliver(change)
    assert requested.status_code == 200, requested.text
    assert requested.json()["renewal_requested_on"] is not None
    assert delivered.status_code == 200, delivered.text
    assert (delivered.json()["processed"], delivered.json()["refused"]) == (1, 0)
    detail = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder_token)).json()
    assert detail["version"] == 2 and detail["particulars"] == {"仓储地址": "新址"}
    assert detail["renewal_requested_on"] == requested.json()["renewal_requested_on"]
    assert detail["renewal_timely"] is True


async def test_an_approved_change_of_a_suspended_licence_is_made_and_it_stays_suspended(
    client: httpx.AsyncClient,
    tokens: Tokens,
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
    serve_penalty_notice: Callable[..., Awaitable[dict[str, date]]],
) -> None:
    """A holder's change approved at approval (Art. 49) while its licence is suspended (暂扣) was
    refused by the register and dropped for good: the suspension, a penalty for a term, cost the
    holder its change. It is made on a new version that stays suspended on the same decision."""
    uscc = random_uscc()
    await deliver(new_event(uscc=uscc))
    [listed] = await _listed(client, tokens, uscc)
    licence_no = listed["licence_no"]
    await serve_penalty_notice(client, licence_no)
    suspended = await client.post(
        f"/api/v1/licences/{licence_no}/suspension",
        json={
            "legal_basis": "《食盐专营办法》第二十九条",
            "reason": "违反食盐储存规定，暂扣",
            "penalty_decision_no": "沪盐罚〔2026〕60号",
            "hearing": "waived",
        },
        headers=tokens.staff(Role.APPROVER, "310000"),
    )
    assert suspended.status_code == 200, suspended.text
    change = new_event(
        uscc=uscc, details={"business_type": "change", "particulars": {"仓储地址": "浦东新址"}}
    )
    assert (await deliver(change)).json()["processed"] == 1
    detail = (
        await client.get(f"/api/v1/licences/{licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    assert detail["particulars"]["仓储地址"] == "浦东新址"
    assert detail["status"] == "suspended"
    assert detail["act_details"]["penalty_decision_no"] == "沪盐罚〔2026〕60号"


async def test_a_holder_change_delivered_late_does_not_undo_the_authoritys_own_change(
    client: httpx.AsyncClient,
    tokens: Tokens,
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
) -> None:
    """The authority changes a licence under Art. 8; a holder's change decided a day before, but
    delivered after it, must not put back what the authority changed."""
    uscc = random_uscc()
    await deliver(new_event(uscc=uscc))
    [listed] = await _listed(client, tokens, uscc)
    licence_no = listed["licence_no"]
    own = await client.post(
        f"/api/v1/licences/{licence_no}/changes",
        json={
            "particulars": {"经营范围": "依职权变更"},
            "reason": "上位法修改",
            "legal_basis": "《行政许可法》第八条",
            "compensation_note": "依法补偿",
        },
        headers=tokens.staff(Role.APPROVER, "310000"),
    )
    assert own.status_code == 200, own.text
    earlier = new_event(
        uscc=uscc,
        details={
            "business_type": "change",
            "particulars": {"经营范围": "旧申请", "仓储面积": "800平方米"},
        },
    )
    decided = datetime.fromisoformat(earlier["data"]["occurred_at"])
    earlier["data"]["occurred_at"] = (decided - timedelta(days=1)).isoformat()
    assert (await deliver(earlier)).json()["processed"] == 1
    detail = (
        await client.get(f"/api/v1/licences/{licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    assert detail["particulars"]["经营范围"] == "依职权变更"
    assert detail["particulars"]["仓储面积"] == "800平方米"


async def test_a_change_decided_earlier_but_delivered_later_does_not_undo_a_later_one(
    client: httpx.AsyncClient,
    tokens: Tokens,
    deliver: Deliver,
    new_event: Callable[..., dict[str, Any]],
) -> None:
    """approval's relay sends an event that failed three times alone, after its backoff, while
    newer events go on (after an outage of license, say): two changes of one licence can arrive
    in the reverse order of their decisions. The earlier decision, applied last, put back the
    holder's old name and the particulars the later decision had changed (Art. 49: the licence
    is what the holder's applications made it, the later decision last)."""
    uscc = random_uscc()
    await deliver(new_event(uscc=uscc))
    [listed] = await _listed(client, tokens, uscc)
    licence_no = listed["licence_no"]
    later = new_event(
        uscc=uscc,
        applicant_name="上海盐业更名有限公司",
        details={"business_type": "change", "particulars": {"仓储地址": "浦东新址"}},
    )
    earlier = new_event(
        uscc=uscc,
        applicant_name="上海盐业示范有限公司",
        details={
            "business_type": "change",
            "particulars": {"仓储地址": "旧址扩建", "仓储面积": "800平方米"},
        },
    )
    decided = datetime.fromisoformat(later["data"]["occurred_at"])
    earlier["data"]["occurred_at"] = (decided - timedelta(days=1)).isoformat()
    assert (await deliver(later)).json()["processed"] == 1
    assert (await deliver(earlier)).json()["processed"] == 1
    detail = (
        await client.get(f"/api/v1/licences/{licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    assert detail["version"] == 3
    assert detail["holder_name"] == "上海盐业更名有限公司"
    # What only the earlier decision changed is applied; what the later one changed stays.
    assert detail["particulars"] == {"仓储地址": "浦东新址", "仓储面积": "800平方米"}
