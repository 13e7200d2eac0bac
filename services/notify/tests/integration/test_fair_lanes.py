"""One enterprise cannot multiply the suite's webhook work: it registers at most
``WEBHOOKS_PER_ENTERPRISE`` webhooks, each of which is one more delivery of every notice it gets."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from govshared.testing import Tokens, problem, random_uscc
from notify.webhooks import WEBHOOKS_PER_ENTERPRISE

from ..conftest import Outside


async def test_an_enterprise_cannot_multiply_its_notices_by_registering_webhooks(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, outside: Outside
) -> None:
    # Each webhook of an enterprise is one more delivery of each of its notices: thousands of
    # them would make every notice thousands of rows and attempts.
    uscc = random_uscc()
    headers = tokens.enterprise(uscc)
    limit = WEBHOOKS_PER_ENTERPRISE
    for n in range(limit):
        created = await client.post(
            "/api/v1/webhooks", json={"url": outside.webhook_url(f"many-{n}")}, headers=headers
        )
        assert created.status_code == 201, created.text
    refused = await client.post(
        "/api/v1/webhooks", json={"url": outside.webhook_url("one-more")}, headers=headers
    )
    assert refused.status_code == 409, refused.text
    assert problem(refused)["code"] == "webhook_limit_reached"
    assert len((await client.get("/api/v1/webhooks", headers=headers)).json()) == limit
    # Another enterprise is not affected, and one removed makes room again.
    other = await client.post(
        "/api/v1/webhooks",
        json={"url": outside.webhook_url("other")},
        headers=tokens.enterprise(random_uscc()),
    )
    assert other.status_code == 201
    first = (await client.get("/api/v1/webhooks", headers=headers)).json()[0]["id"]
    assert (await client.delete(f"/api/v1/webhooks/{first}", headers=headers)).status_code == 204
    again = await client.post(
        "/api/v1/webhooks", json={"url": outside.webhook_url("one-more")}, headers=headers
    )
    assert again.status_code == 201
