"""Issue 15, limits before work (notify): sizes and NUL refused at the edge."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI

from govshared.testing import Tokens, problem, random_uscc


async def test_an_oversized_event_batch_is_413_before_the_token_is_checked(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    body = json.dumps([{"data": "a" * app.state.settings.max_json_bytes}])
    response = await client.post(
        "/api/v1/events",
        content=body,
        headers={"Content-Type": "application/cloudevents-batch+json", "Authorization": "Bearer x"},
    )
    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"


async def test_a_huge_authorization_header_is_431(client: httpx.AsyncClient, app: FastAPI) -> None:
    token = "A" * (app.state.settings.max_header_bytes + 1)
    response = await client.get("/api/v1/inbox", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 431
    assert problem(response)["code"] == "request_header_fields_too_large"


async def test_a_nul_in_preferences_is_refused_before_the_database(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    body = json.dumps({"email": "a\u0000@example.cn"})
    response = await client.put(
        "/api/v1/preferences",
        content=body,
        headers={"Content-Type": "application/json", **tokens.enterprise(uscc)},
    )
    assert response.status_code == 400
    assert problem(response)["code"] == "nul_character"
