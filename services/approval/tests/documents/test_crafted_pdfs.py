"""Crafted PDFs on the public check (no login): whatever a file embeds, the answer is a verdict.

The files are made with pypdf, as anyone could make them: the attachment names and formats of a
sealed document (``onestop-seal.json``) and of one the applicant signed (``onestop-signature.json``),
with fields of the wrong type. None is ours: each is "not sealed by this system", never a 500.
"""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
from pypdf import PdfWriter

from approval.documents.render import ATTACHMENT, SIGNED_ATTACHMENT
from approval.documents.signed import FORMAT as SIGNED_FORMAT
from govshared.seal import sm3_hex


def pdf_with(name: str, data: bytes) -> bytes:
    """A one-page PDF carrying ``data`` as the embedded file ``name``."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_attachment(name, data)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def signed(**fields: Any) -> bytes:
    """An ``onestop-signature.json`` payload: the brief's format, number and content, overridden."""
    payload = {"format": SIGNED_FORMAT, "number": "X", "content": "{}", "signature": {}, **fields}
    return pdf_with(SIGNED_ATTACHMENT, json.dumps(payload).encode())


def sealed(content: dict[str, Any]) -> bytes:
    """An ``onestop-seal.json`` whose signature has the shape of a seal's (but is nobody's)."""
    signature = {
        "digest": "0" * 64,
        "signed_at": "2026-11-28T01:00:00+00:00",
        "signature": "1" * 128,
        "seal": {
            "seal_id": "3101000000001",
            "authority": "上海市某局",
            "valid_from": "2026-01-01T00:00:00+00:00",
            "valid_until": "2027-01-01T00:00:00+00:00",
            "public_key": "2" * 128,
        },
    }
    return pdf_with(ATTACHMENT, json.dumps({"content": content, "signature": signature}).encode())


CONTENT = '{"application_no":5}'
CRAFTED = {
    # A signed document's content with a number where text belongs (the brief's example).
    "signed_content_number": signed(content=CONTENT),
    # ... and with its digest right, so that the check goes on to the certificate.
    "signed_content_number_digest_right": signed(
        content=CONTENT, signature={"digest": sm3_hex(CONTENT.encode())}
    ),
    # A revocation record that is a string, not an object.
    "signed_revocation_string": signed(signature={"revocation_at_signing": "good"}),
    # Signature fields of the wrong types.
    "signed_serial_number": signed(signature={"certificate_serial": 12, "signed_at": 1}),
    "signed_number_not_text": signed(number=1),
    "signed_record_not_object": signed(signature=["x"]),
    "signed_content_not_object": signed(content="[1, 2]"),
    # A sealed document's content with its number, name or title not text.
    "sealed_number_integer": sealed({"number": 1}),
    "sealed_title_object": sealed({"number": "N", "title": {"zh": "准予"}}),
    "sealed_applicant_list": sealed({"applicant_name": ["a"], "authority": 3}),
    # JSON nested deeper than the parser goes.
    "sealed_nested": pdf_with(ATTACHMENT, b"[" * 100_000),
    "signed_nested": pdf_with(SIGNED_ATTACHMENT, b"[" * 100_000),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
async def test_a_crafted_pdf_is_not_ours_on_the_api_and_the_page(
    client: httpx.AsyncClient, case: str
) -> None:
    pdf = CRAFTED[case]
    answered = await client.post(
        "/api/v1/documents/verify", files={"file": ("crafted.pdf", pdf, "application/pdf")}
    )
    assert answered.status_code == 200, answered.text
    verdict = answered.json()
    assert verdict["genuine"] is False and verdict["failure"] == "not_sealed", verdict
    assert verdict["verdict"] == "不是本系统签发的电子文书（未找到电子印章签名）"
    page = await client.post("/verify", files={"file": ("crafted.pdf", pdf, "application/pdf")})
    assert page.status_code == 200, page.text
    assert 'data-genuine="false"' in page.text and 'data-failure="not_sealed"' in page.text
