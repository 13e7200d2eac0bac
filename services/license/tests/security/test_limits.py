"""Issue 15, limits before work (license): sizes and NUL refused at the edge."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from govshared.auth import Role
from govshared.testing import Tokens, problem


async def test_an_oversized_verification_upload_is_413_before_it_is_read(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    limit = app.state.settings.max_upload_bytes
    boundary = "sec-identity-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    chunk = b"0" * (256 * 1024)
    count = limit // len(chunk) + 2
    consumed = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal consumed
        consumed += 1
        yield head
        for _ in range(count):
            consumed += 1
            yield chunk
        yield tail

    size = len(head) + count * len(chunk) + len(tail)
    response = await client.post(
        "/api/v1/licences/verify",
        content=body(),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(size),
        },
    )
    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"
    # Refused on its declared length: the body was not read (it used to be spooled whole first).
    assert consumed <= 1


async def test_an_oversized_event_batch_is_413_before_the_token_is_checked(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    body = json.dumps([{"data": "a" * app.state.settings.max_json_bytes}])
    response = await client.post(
        "/api/v1/events",
        content=body,
        headers={"Content-Type": "application/cloudevents-batch+json"},
    )
    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"


async def test_oversized_headers_are_431(client: httpx.AsyncClient, app: FastAPI) -> None:
    cookie = "a" * app.state.settings.max_header_bytes
    response = await client.get("/api/v1/reform-items", headers={"Cookie": cookie})
    assert response.status_code == 431
    assert problem(response)["code"] == "request_header_fields_too_large"


async def test_nul_in_a_query_or_a_json_string_is_refused(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.get(
        "/api/v1/licences", params={"q": "\x00"}, headers=tokens.staff(Role.ACCEPTOR)
    )
    assert response.status_code == 400
    assert problem(response)["code"] == "nul_character"
    body = json.dumps({"reason": "撤销\u0000"})
    refused = await client.post(
        "/api/v1/licences/SH-NONE/revocation",
        content=body,
        headers={"Content-Type": "application/json", **tokens.staff(Role.HEAD)},
    )
    assert refused.status_code == 400
    assert problem(refused)["code"] == "nul_character"
