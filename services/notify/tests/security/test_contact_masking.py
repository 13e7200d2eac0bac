"""Staff read why a delivery failed, never the enterprise's mailbox or phone number in full (个人信息
保护法第六条、第五十一条: what staff need is that the address was refused, not the address): an
SMTP server's refusal and an SMS provider's answer name the address, and the delivery's error and
history keep only a masked form of it."""

from __future__ import annotations

import json
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role
from govshared.events import EventType
from govshared.testing import Tokens, random_uscc
from notify.models import DeliveryStatusChange

from ..conftest import MailSink, Outside, application_event, drain, post_events
from ..integration.test_channels import deliveries_of, set_profile


def test_mailboxes_and_mobile_numbers_are_masked_in_text() -> None:
    from notify.contacts import mask_contacts

    text = "550 5.1.1 <zhang.san@example.com.cn>: rejected; phone 13912345678, +8613912345678"
    masked = mask_contacts(text)
    assert "zhang.san" not in masked and "12345678" not in masked
    assert "z***@example.com.cn" in masked
    assert "139****5678" in masked
    # Numbers that are not mobile numbers (codes, sizes, ids) stay as they are.
    assert mask_contacts("HTTP 400; 310115001001; 91310115MA1K4ABC12") == (
        "HTTP 400; 310115001001; 91310115MA1K4ABC12"
    )


async def test_staff_never_read_the_address_a_refusal_names(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    outside: Outside,
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    address = f"gone-{uuid.uuid4().hex[:8]}@example.com"
    phone = "139" + str(uuid.uuid4().int)[:8]
    sink.unknown.add(address)
    outside.sms_status = 400
    try:
        await set_profile(client, tokens, uscc, email=address, mobile=phone)
        event = application_event(EventType.APPLICATION_ACCEPTED, uscc, jurisdiction="310115")
        await post_events(client, tokens, [event])
        await drain(app)
    finally:
        outside.sms_status = 200
        sink.unknown.discard(address)
    deliveries = await deliveries_of(session, event["id"])
    assert deliveries["email"].status == "dead"
    assert deliveries["sms"].status == "dead"

    staff = tokens.staff(Role.ACCEPTOR, "310000")
    listed = await client.get(
        "/api/v1/deliveries", params={"status": "dead", "limit": 100}, headers=staff
    )
    assert listed.status_code == 200
    ours = [d for d in listed.json()["items"] if d["event_id"] == event["id"]]
    assert {d["channel"] for d in ours} == {"email", "sms"}
    for delivery in ours:
        detail = await client.get(f"/api/v1/deliveries/{delivery['id']}", headers=staff)
        assert detail.status_code == 200
        seen = json.dumps([delivery, detail.json()], ensure_ascii=False)
        assert address not in seen and address.split("@")[0] not in seen
        assert phone not in seen
        assert detail.json()["last_error"]  # the reason is still there
    stored = [
        text
        for text in (
            await session.scalars(
                select(DeliveryStatusChange.detail).where(
                    DeliveryStatusChange.delivery_id.in_([d.id for d in deliveries.values()])
                )
            )
        ).all()
        if text
    ] + [d.last_error or "" for d in deliveries.values()]
    await session.commit()
    assert not [t for t in stored if address in t or phone in t]
    assert any("g***@example.com" in t for t in stored)
    assert any(f"{phone[:3]}****{phone[-4:]}" in t for t in stored)
