"""A queued notice goes where the enterprise's preferences say when it is sent, not where they said
when its event arrived: a changed address gets it, a removed one never does, and a channel turned
off for ordinary notices stays off for those already waiting (quiet hours, rate limit, retries)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.events import EventType
from govshared.testing import Tokens, random_uscc
from notify.models import Delivery

from ..conftest import MailSink, Outside, application_event, drain, post_events
from .test_channels import deliveries_of, mobile, set_profile


async def test_a_statutory_notice_goes_to_the_address_in_force_when_it_is_sent(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    outside: Outside,
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    old, new = f"old-{uscc.lower()}@example.com", f"new-{uscc.lower()}@example.com"
    old_phone = mobile()
    await set_profile(client, tokens, uscc, email=old, mobile=old_phone)
    event = application_event(EventType.APPLICATION_DENIED, uscc, reason="材料虚假")
    await post_events(client, tokens, [event])
    # Before the worker's turn the enterprise changes its mailbox and withdraws its phone number
    # (a number given up is given to someone else).
    await set_profile(client, tokens, uscc, email=new)
    await drain(app)

    assert sink.to(old) == []
    assert [m["Subject"] for m in sink.to(new)] == ["不予行政许可决定：食盐定点批发企业审批"]
    assert outside.sms_to(old_phone) == []
    deliveries = await deliveries_of(session, event["id"])
    assert deliveries["email"].status == "delivered"
    assert deliveries["email"].address == new  # the record of service names where it went
    assert deliveries["sms"].status == "dead"
    assert "联系方式" in (deliveries["sms"].last_error or "")


async def test_a_channel_turned_off_holds_back_the_ordinary_notices_already_waiting(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    outside: Outside,
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    address, phone = f"optout-{uscc.lower()}@example.com", mobile()
    await set_profile(client, tokens, uscc, email=address, mobile=phone)
    ordinary = application_event(EventType.APPLICATION_SUBMITTED, uscc)
    statutory = application_event(EventType.APPLICATION_ACCEPTED, uscc)
    await post_events(client, tokens, [ordinary, statutory])
    await set_profile(
        client, tokens, uscc, email=address, mobile=phone, disabled_channels=["email", "sms"]
    )
    await drain(app)

    # The statutory notice ignores the preference; the ordinary one is not sent.
    assert [m["Subject"] for m in sink.to(address)] == ["受理通知：食盐定点批发企业审批"]
    assert [m["template_id"] for m in outside.sms_to(phone)] == ["SMS_ACCEPTED"]
    held = await deliveries_of(session, ordinary["id"])
    assert held["email"].status == "dead"
    assert held["sms"].status == "dead"
    assert "关闭" in (held["sms"].last_error or "")


async def test_a_gateway_message_id_too_long_to_keep_sends_the_batch_once(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    outside: Outside,
) -> None:
    # A provider whose message ids outgrow what a delivery keeps (128 characters): the results
    # of its batch could not be recorded, and every notice of the batch went out again after
    # the lease, and again after the next.
    sink, _ = smtp
    uscc = random_uscc()
    address, phone = f"longid-{uscc.lower()}@example.com", mobile()
    await set_profile(client, tokens, uscc, email=address, mobile=phone)
    event = application_event(EventType.APPLICATION_APPROVED, uscc)
    await post_events(client, tokens, [event])
    outside.sms_message_id = "BIZ-" + "7" * 300
    try:
        await drain(app)
    finally:
        outside.sms_message_id = None
    deliveries = await deliveries_of(session, event["id"])
    assert deliveries["sms"].status == "sent"
    assert deliveries["email"].status == "delivered"
    # Past the lease the next passes find nothing to send again.
    await session.execute(
        update(Delivery)
        .where(Delivery.event_id == event["id"])
        .values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.commit()
    await drain(app)
    assert len(outside.sms_to(phone)) == 1
    assert len(sink.to(address)) == 1
