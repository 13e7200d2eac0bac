"""A retry is recognised by its content, not its bytes; a key stored before the fingerprint's form
changed still replays; a different request under the key is still refused."""

from __future__ import annotations

import json
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from approval.db import idempotency_keys
from govshared.idempotency import request_fingerprint, same_request
from govshared.testing import Tokens, problem, random_uscc

BODY = {
    "item_code": "JXW-XK-004",
    "business_type": "new",
    "applicant_name": "上海化工示范有限公司",
    "form": {"storage_address": "上海市浦东新区", "hazard_class": "第3类", "area": 120},
}


def reordered(body: dict[str, object]) -> bytes:
    """The same JSON content with its keys in reverse order at every level and other spacing."""

    def flip(value: object) -> object:
        if isinstance(value, dict):
            return {k: flip(v) for k, v in reversed(value.items())}
        return value

    return json.dumps(flip(body), ensure_ascii=False, indent=2).encode()


async def test_a_retry_with_reordered_json_is_the_same_request(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    headers = {**tokens.enterprise(random_uscc()), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post("/api/v1/applications", json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(
        "/api/v1/applications",
        content=reordered(BODY),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    changed = {**BODY, "form": {**BODY["form"], "area": 121}}  # type: ignore[dict-item]
    refused = await client.post("/api/v1/applications", json=changed, headers=headers)
    assert refused.status_code == 422
    assert problem(refused)["code"] == "idempotency_key_reused"


async def test_a_key_stored_with_the_earlier_fingerprint_still_replays(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A retry that crosses the upgrade (its first attempt fingerprinted by the standard library's
    JSON) gets the first answer, not a 422."""
    key = f"k-{uuid.uuid4()}"
    headers = {**tokens.enterprise(random_uscc()), "Idempotency-Key": key}
    first = await client.post("/api/v1/applications", json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    canonical = request_fingerprint("POST", "/api/v1/applications", _validated(BODY))
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == key)
            .values(request_hash=canonical.previous())
        )
    again = await client.post("/api/v1/applications", json=BODY, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


def _validated(body: dict[str, object]) -> object:
    from approval.schemas import ApplicationCreate

    return ApplicationCreate.model_validate(body).model_dump(mode="json")


def test_the_fingerprint_is_of_the_content() -> None:
    a = request_fingerprint("POST", "/x", {"a": 1, "b": {"c": "申", "d": [1, 2]}})
    b = request_fingerprint("POST", "/x", {"b": {"d": [1, 2], "c": "申"}, "a": 1})
    assert a == b and len(a) == 64
    assert a != request_fingerprint("POST", "/x", {"a": 1, "b": {"c": "申", "d": [2, 1]}})
    assert a != request_fingerprint("POST", "/y", {"a": 1, "b": {"c": "申", "d": [1, 2]}})
    # An integer beyond 64 bits (valid JSON) takes the standard library's form, still stable.
    big = {"n": 2**70}
    assert request_fingerprint("POST", "/x", big) == request_fingerprint("POST", "/x", dict(big))
    assert same_request(a.previous(), a) and same_request(str(a), a)
    assert not same_request(request_fingerprint("POST", "/x", {"a": 2}).previous(), a)
