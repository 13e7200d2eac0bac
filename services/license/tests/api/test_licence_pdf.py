"""Licence certificates as PDFs: the text read back, the sealed QR payload verified, revocation shown."""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
from pypdf import PdfReader

from govshared.auth import Role
from govshared.seal.pdf import embedded, extract_text
from govshared.testing import Tokens, random_uscc

Issue = Callable[..., Awaitable[str]]


async def test_certificate_pdf_shows_the_licence_and_its_qr_verifies(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc)
    holder = tokens.enterprise(uscc)
    detail = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()
    response = await client.get(f"/api/v1/licences/{licence_no}/pdf", headers=holder)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf = response.content

    text = "".join(extract_text(pdf).split())
    for expected in (
        detail["licence_type_name"],
        licence_no,
        detail["holder_name"],
        uscc,
        detail["issuing_authority"],
        "扫码核验真伪",
        detail["content_hash"],
    ):
        assert "".join(expected.split()) in text, expected
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1

    sealed = embedded(pdf, "onestop-licence.json")
    assert sealed is not None
    payload = json.loads(sealed)
    assert payload["qr_payload"] == detail["qr_payload"]
    assert payload["certificate"]["licence_no"] == licence_no
    qr = parse_qs(urlsplit(detail["qr_url"]).query)["qr"][0]
    genuine = (await client.get("/api/v1/licences/verify", params={"qr": qr})).json()
    assert genuine["result"] == "valid" and genuine["genuine"]

    revoked = await client.post(
        f"/api/v1/licences/{licence_no}/revocation",
        json={"reason": "以欺骗手段取得许可"},
        headers=tokens.staff(Role.APPROVER, "310000"),
    )
    assert revoked.status_code == 200, revoked.text
    after = (await client.get("/api/v1/licences/verify", params={"qr": qr})).json()
    assert after["genuine"] and after["status"] == "revoked" and not after["valid_now"]


async def test_only_the_holder_and_staff_get_the_certificate(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    licence_no = await issue(uscc=random_uscc())
    url = f"/api/v1/licences/{licence_no}/pdf"
    assert (await client.get(url, headers=tokens.enterprise(random_uscc()))).status_code == 404
    assert (await client.get(url)).status_code == 401
    staff = await client.get(url, headers=tokens.staff(Role.REVIEWER, "310000"))
    assert staff.status_code == 200
