"""The public licence verification page the certificate's QR code opens: over HTTP, and in a real
headless Chromium (Debian's package)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from fastapi import FastAPI

from govshared.auth import Role
from govshared.seal.pdf import read_sealed
from govshared.testing import Tokens, dump_dom, random_uscc, serve_on_loopback

Issue = Callable[..., Awaitable[str]]


async def qr_path(client: httpx.AsyncClient, tokens: Tokens, uscc: str, licence_no: str) -> str:
    """The path and query the certificate's QR code opens (its host is the public one)."""
    licence = (
        await client.get(f"/api/v1/licences/{licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    url = urlsplit(licence["qr_url"])
    assert url.path == "/licences/verify"
    return f"{url.path}?{url.query}"


async def test_the_qr_code_opens_a_page_that_says_genuine_then_revoked(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc)
    path = await qr_path(client, tokens, uscc, licence_no)

    page = await client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-genuine="true"' in page.text and "✔ 真实有效" in page.text
    assert licence_no in page.text and uscc in page.text and "第1版" in page.text

    revoked = await client.post(
        f"/api/v1/licences/{licence_no}/revocation",
        json={
            "legal_basis": "《中华人民共和国行政许可法》第六十九条第二款",
            "reason": "以欺骗手段取得许可",
        },
        headers=tokens.staff(Role.APPROVER, "310000"),
    )
    assert revoked.status_code == 200, revoked.text
    page = await client.get(path)
    assert 'data-genuine="false"' in page.text
    assert "⚠ 证照真实，但当前不是有效状态" in page.text and "已撤销" in page.text


async def test_uploads_genuine_tampered_and_not_a_pdf(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc)
    download = await client.get(
        f"/api/v1/licences/{licence_no}/pdf", headers=tokens.enterprise(uscc)
    )
    # Served to be saved, never rendered or sniffed in the service's origin.
    assert download.headers["content-disposition"] == (
        f"attachment; filename=\"{licence_no}-v1.pdf\"; filename*=UTF-8''{licence_no}-v1.pdf"
    )
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-type"] == "application/pdf"
    pdf = download.content
    genuine = await client.post(
        "/licences/verify", files={"file": ("l.pdf", pdf, "application/pdf")}
    )
    assert genuine.status_code == 200 and 'data-genuine="true"' in genuine.text
    assert "与存档文件一致" in genuine.text

    sealed = read_sealed(pdf, "onestop-licence.json")
    assert sealed is not None
    holder = sealed[0]["holder_name"]
    forged_name = "假" + holder[1:]
    tampered = pdf.replace(holder.encode("utf-8"), forged_name.encode("utf-8"), 1)
    assert tampered != pdf
    forged = await client.post(
        "/licences/verify", files={"file": ("l.pdf", tampered, "application/pdf")}
    )
    assert forged.status_code == 200 and 'data-genuine="false"' in forged.text
    assert "✘" in forged.text

    png = await client.post(
        "/licences/verify", files={"file": ("a.png", b"\x89PNG\r\n\x1a\n....", "image/png")}
    )
    assert png.status_code == 415 and "请上传 PDF 文件" in png.text

    unknown = await client.get("/licences/verify", params={"licence_no": "NO-SUCH-LICENCE"})
    assert "✘ 证照库中查无此证照" in unknown.text
    bad_digest = await client.get(
        "/licences/verify", params={"licence_no": licence_no, "digest": "xyz"}
    )
    assert bad_digest.status_code == 422 and "64 位十六进制" in bad_digest.text


async def test_the_page_in_chromium(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc)
    path = await qr_path(client, tokens, uscc, licence_no)
    async with serve_on_loopback(app) as base:
        genuine = await dump_dom(base + path)
        query = dict(parse_qsl(urlsplit(path).query))
        assert query["licence_no"] == licence_no and len(query["digest"]) == 64
        forged = await dump_dom(
            f"{base}/licences/verify?{urlencode({**query, 'digest': '0' * 64})}"
        )
    assert 'data-genuine="true"' in genuine and "✔ 真实有效" in genuine and licence_no in genuine
    assert 'data-genuine="false"' in forged and "✘ 核验未通过：伪造或被篡改" in forged
