"""Issue 15, limits before work (approval): sizes refused before the body is read or the token
checked, and NUL characters refused at the edge, on both databases."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from pypdf import PdfWriter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import Application
from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc

BODY = {
    "item_code": "JXW-XK-002",
    "business_type": "new",
    "applicant_name": "上海盐业示范有限公司",
    "form": {"warehouse_address": "上海市浦东新区申江路1号", "warehouse_area": 1200},
}


async def test_an_oversized_json_body_is_413_before_the_token_is_checked(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    limit = app.state.settings.max_json_bytes
    body = json.dumps({**BODY, "form": {"x": "a" * (limit + 1)}})
    response = await client.post(
        "/api/v1/applications",
        content=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer forged"},
    )
    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"


async def test_a_chunked_body_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, app: FastAPI, tokens: Tokens
) -> None:
    limit = app.state.settings.max_json_bytes
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):
            sent += 64 * 1024
            yield b" " * (64 * 1024)

    response = await client.post(
        "/api/v1/applications",
        content=chunks(),
        headers={"Content-Type": "application/json", **tokens.enterprise(random_uscc())},
    )
    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"
    assert sent <= limit + 128 * 1024, "reading stopped at the limit"


async def test_an_oversized_upload_is_413_before_it_is_spooled_or_authenticated(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    limit = app.state.settings.max_upload_bytes
    files = {"file": ("big.pdf", b"%PDF-1.7\n" + b"0" * (limit + 128 * 1024), "application/pdf")}
    response = await client.post(
        f"/api/v1/applications/{uuid.uuid4()}/materials",
        data={"name": "营业执照"},
        files=files,
        headers={"Authorization": "Bearer forged"},
    )
    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"


async def test_an_oversized_header_is_431_before_the_token_is_parsed(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    huge = "eyJ" + "A" * app.state.settings.max_header_bytes
    response = await client.get("/api/v1/applications", headers={"Authorization": f"Bearer {huge}"})
    assert response.status_code == 431
    assert problem(response)["code"] == "request_header_fields_too_large"


async def test_a_nul_in_a_json_string_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    uscc = random_uscc()
    body = json.dumps({**BODY, "applicant_name": "上海\u0000盐业有限公司"})
    assert "\\u0000" in body
    response = await client.post(
        "/api/v1/applications",
        content=body,
        headers={"Content-Type": "application/json", **tokens.enterprise(uscc)},
    )
    assert response.status_code == 400
    assert problem(response)["code"] == "nul_character"
    in_form = json.dumps({**BODY, "form": {"warehouse_address": "a\u0000b", "warehouse_area": 1}})
    refused = await client.post(
        "/api/v1/applications",
        content=in_form,
        headers={"Content-Type": "application/json", **tokens.enterprise(uscc)},
    )
    assert problem(refused)["code"] == "nul_character"
    count = await session.scalar(
        select(func.count()).select_from(Application).where(Application.applicant_uscc == uscc)
    )
    await session.commit()
    assert count == 0
    # The six characters \u0000 written as text (an escaped backslash) are not a NUL.
    literal = json.dumps({**BODY, "applicant_name": "上海\\u0000盐业有限公司"})
    accepted = await client.post(
        "/api/v1/applications",
        content=literal,
        headers={"Content-Type": "application/json", **tokens.enterprise(uscc)},
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["applicant_name"] == "上海\\u0000盐业有限公司"


async def test_a_nul_in_a_query_parameter_is_refused(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    staff = tokens.staff(Role.ACCEPTOR)
    for params in ({"q": "上海\x00"}, {"item_code": "JXW\x00"}):
        response = await client.get("/api/v1/staff/applications", params=params, headers=staff)
        assert response.status_code == 400, response.text
        assert problem(response)["code"] == "nul_character"
    catalogue = await client.get("/api/v1/items", params={"q": "\x00"})
    assert problem(catalogue)["code"] == "nul_character"


async def test_a_nul_in_a_multipart_field_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    created = await client.post("/api/v1/applications", json=BODY, headers=tokens.enterprise(uscc))
    assert created.status_code == 201, created.text
    base = f"/api/v1/applications/{created.json()['id']}/materials"
    pdf = PdfWriter()
    pdf.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    pdf.write(out)
    document = out.getvalue()
    refused = await client.post(
        base,
        data={"name": "仓储设施证明材料\x00"},
        files={"file": ("证明.pdf", document, "application/pdf")},
        headers=tokens.enterprise(uscc),
    )
    assert refused.status_code == 400, refused.text
    assert problem(refused)["code"] == "nul_character"
    assert problem(refused)["invalid_params"] == [{"name": "body.name", "reason": "NUL 字符"}]
    # The field after the file, the body streamed in small chunks.
    boundary = "nul-after-file"

    def file_then_name(name: str) -> bytes:
        return (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"'
                "\r\nContent-Type: application/pdf\r\n\r\n"
            ).encode()
            + document
            + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n'.encode()
            + name.encode()
            + f"\r\n--{boundary}--\r\n".encode()
        )

    body = file_then_name("仓储设施\x00证明材料")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    streamed = await client.post(
        base,
        content=chunks(),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            **tokens.enterprise(uscc),
        },
    )
    assert streamed.status_code == 400, streamed.text
    assert problem(streamed)["code"] == "nul_character"
    listed = await client.get(base, headers=tokens.enterprise(uscc))
    assert listed.json()["materials"] == []
    # The same upload without the NUL is stored: the refusal was the NUL's.
    stored = await client.post(
        base,
        content=file_then_name("仓储设施证明材料"),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            **tokens.enterprise(uscc),
        },
    )
    assert stored.status_code == 201, stored.text
