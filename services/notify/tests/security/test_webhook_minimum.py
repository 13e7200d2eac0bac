"""An enterprise's webhook carries its notice and the cause event, not who among the staff acted
for whom: a decision made under a delegation names the absent colleague's account and the
delegation in approval's event, which the enterprise's own system has no need of (个人信息保护法
第六条: personal information of staff, processed only as far as the purpose needs)."""

from __future__ import annotations

import json
import uuid

import httpx
from fastapi import FastAPI

from govshared.events import EventType
from govshared.testing import Tokens, random_uscc

from ..conftest import Outside, application_event, drain, post_events


async def test_a_webhook_does_not_name_the_staff_a_delegate_acted_for(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, outside: Outside
) -> None:
    uscc = random_uscc()
    name = f"erp-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        "/api/v1/webhooks", json={"url": outside.webhook_url(name)}, headers=tokens.enterprise(uscc)
    )
    assert created.status_code == 201, created.text
    absent = f"approver-wang-{uuid.uuid4().hex[:6]}"
    delegation = str(uuid.uuid4())
    event = application_event(
        EventType.APPLICATION_APPROVED,
        uscc,
        details={
            "step": "decision",
            "step_name": "审批",
            "opinion": "符合条件，同意",
            "on_behalf_of": absent,
            "delegation_id": delegation,
        },
    )
    await post_events(client, tokens, [event])
    await drain(app)

    [(_, body)] = outside.webhooks[name]
    text = body.decode()
    assert absent not in text and delegation not in text
    sent = json.loads(body)
    assert sent["event"]["id"] == event["id"]
    assert sent["event"]["data"]["details"]["opinion"] == "符合条件，同意"  # in the decision too
    assert sent["event"]["data"]["application_no"] == event["data"]["application_no"]
