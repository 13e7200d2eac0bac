"""Uploads are checked beyond their first bytes and every stored file is served as a download."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import UTC, datetime
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    RectangleObject,
    TextStringObject,
)
from sqlalchemy import insert

from approval.context import context_of
from approval.models import Material
from govshared.auth import Role
from govshared.problems import UnsupportedMediaType
from govshared.testing import Tokens, problem, random_uscc
from govshared.uploads import (
    UploadContentRejected,
    UploadLimits,
    content_disposition,
    display_filename,
    inspect_upload,
)

from ..documents.conftest import Flow

MATERIAL = "仓储设施证明材料"


def real_pdf(*, javascript: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    if javascript is not None:
        # Run on open: the action a hostile PDF uses, spelled as pypdf writes it.
        writer._root_object[NameObject("/OpenAction")] = DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject(javascript),
            }
        )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with_link(action: DictionaryObject) -> bytes:
    """A page with a link annotation (held in an indirect /Annots array) running ``action``."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=200, height=200)
    link = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Link"),
            NameObject("/Rect"): RectangleObject([0, 0, 10, 10]),
            NameObject("/A"): action,
        }
    )
    page[NameObject("/Annots")] = writer._add_object(ArrayObject([writer._add_object(link)]))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def real_image(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(out, format=kind)
    return out.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in files.items():
            package.writestr(name, data)
    return out.getvalue()


PDF = real_pdf()
PNG = real_image("PNG")
JPEG = real_image("JPEG")
OFD = zip_of(
    {
        "OFD.xml": b'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0"/>',
        "Doc_0/Document.xml": b"<ofd:Document/>",
    }
)
HTML = b"<html><body><script>fetch('/api/v1/applications').then(r=>r.text())</script></body></html>"
DOS_STUB = b"MZ\x90\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode.\r\r\n$"

# Each of these passes a first-bytes check (the old one) and is not what it claims to be alone.
POLYGLOTS = {
    "pdf+html": (PDF + HTML, "application/pdf", "active_content"),
    "pdf+html in a comment": (
        PDF.replace(b"%PDF-1.3\n", b"%PDF-1.3\n%<!DOCTYPE html><svg onload=alert(1)>\n", 1),
        "application/pdf",
        "active_content",
    ),
    "pdf+exe": (PDF + DOS_STUB, "application/pdf", "polyglot"),
    "pdf+zip": (PDF + zip_of({"evil.class": b"\xca\xfe\xba\xbe"}), "application/pdf", "polyglot"),
    "pdf with javascript": (
        real_pdf(javascript="app.alert(1)"),
        "application/pdf",
        "active_content",
    ),
    "pdf with a launch link": (
        pdf_with_link(
            DictionaryObject(
                {
                    NameObject("/S"): NameObject("/Launch"),
                    NameObject("/F"): TextStringObject("cmd.exe"),
                }
            )
        ),
        "application/pdf",
        "active_content",
    ),
    "png+html": (PNG + HTML, "image/png", "active_content"),
    "png+zip": (PNG + zip_of({"a.txt": b"x"}), "image/png", "polyglot"),
    "jpeg+html": (
        JPEG + b"<script>alert(document.domain)</script>",
        "image/jpeg",
        "active_content",
    ),
    "ofd with an html page": (
        zip_of({"OFD.xml": b"<ofd:OFD/>", "index.html": b"<p>"}),
        "application/ofd",
        "polyglot",
    ),
}
MALFORMED = {
    "pdf header only": (
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n" + b"x" * 2000,
        "application/pdf",
    ),
    "truncated pdf": (PDF[: len(PDF) // 2], "application/pdf"),
    "png signature only": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png"),
    "truncated jpeg": (JPEG[:40], "image/jpeg"),
    "zip without OFD.xml": (b"PK\x03\x04" + b"OFD.xml" + b"\x00" * 50, "application/ofd"),
}


@pytest.mark.parametrize("name", sorted(POLYGLOTS))
def test_polyglots_are_refused(name: str) -> None:
    data, declared, reason = POLYGLOTS[name]
    with pytest.raises(UploadContentRejected) as caught:
        inspect_upload(data, declared=declared)
    assert caught.value.extensions["reason"] == reason


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_file_must_parse_as_its_type(name: str) -> None:
    data, declared = MALFORMED[name]
    with pytest.raises((UploadContentRejected, UnsupportedMediaType)):
        inspect_upload(data, declared=declared)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (PDF, "application/pdf"),
        (
            pdf_with_link(
                DictionaryObject(
                    {
                        NameObject("/S"): NameObject("/URI"),
                        NameObject("/URI"): TextStringObject("https://zwfw.sh.gov.cn"),
                    }
                )
            ),
            "application/pdf",
        ),
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (OFD, "application/ofd"),
    ],
)
def test_genuine_files_pass(data: bytes, kind: str) -> None:
    assert inspect_upload(data, declared=kind) == kind
    assert inspect_upload(data, declared="application/octet-stream") == kind


def test_an_image_beyond_the_pixel_bound_is_refused_before_it_is_decoded() -> None:
    with pytest.raises(UploadContentRejected) as caught:
        inspect_upload(PNG, declared="image/png", limits=UploadLimits(max_image_pixels=100))
    assert caught.value.extensions["reason"] == "too_many_pixels"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\张三\\Desktop\\营业执照.pdf", "营业执照.pdf"),
        ("report\u202egpj.exe", "reportgpj.exe"),  # no right-to-left override
        ("a\x00b\x07c\r\nd.pdf", "abcd.pdf"),
        ('quote"s<and>|pipes?.pdf', "quote_s_and__pipes_.pdf"),
        ("  ..hidden. ", "hidden"),
        ("/", None),
        ("", None),
        (None, None),
    ],
)
def test_client_file_names_are_display_names_only(raw: str | None, shown: str | None) -> None:
    assert display_filename(raw) == shown


def test_long_names_keep_their_extension_within_the_bound() -> None:
    name = display_filename("证" * 500 + ".pdf")
    assert name is not None and len(name) == 120 and name.endswith(".pdf")


def test_content_disposition_carries_an_ascii_fallback_and_the_utf8_name() -> None:
    header = content_disposition('营业执照 "副本".pdf', fallback="material.pdf")
    assert header.startswith('attachment; filename="')
    ascii_part = header.split('filename="')[1].split('"')[0]
    assert ascii_part.isascii() and '"' not in ascii_part
    assert unquote(header.split("filename*=UTF-8''")[1]) == "营业执照 _副本_.pdf"


async def _application(client: httpx.AsyncClient, tokens: Tokens, uscc: str) -> str:
    created = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-XK-002",
            "applicant_name": "上海盐业示范有限公司",
            "form": {"warehouse_address": "上海市", "warehouse_area": 100},
        },
        headers=tokens.enterprise(uscc),
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_polyglot_uploads_are_422_and_store_nothing(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    base = f"/api/v1/applications/{await _application(client, tokens, uscc)}/materials"
    for name in ("pdf+html", "pdf+exe", "png+html"):
        data, declared, reason = POLYGLOTS[name]
        response = await client.post(
            base,
            data={"name": MATERIAL},
            files={"file": ("证明.pdf", data, declared)},
            headers=tokens.enterprise(uscc),
        )
        assert response.status_code == 422, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem(response)["code"] == "upload_content_rejected"
        assert problem(response)["reason"] == reason
    malformed = await client.post(
        base,
        data={"name": MATERIAL},
        files={"file": ("证明.pdf", MALFORMED["pdf header only"][0], "application/pdf")},
        headers=tokens.enterprise(uscc),
    )
    assert malformed.status_code == 422
    assert problem(malformed)["reason"] == "malformed"
    listed = (await client.get(base, headers=tokens.enterprise(uscc))).json()
    assert listed["materials"] == []


async def test_materials_are_downloads_with_a_sanitised_name(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    base = f"/api/v1/applications/{await _application(client, tokens, uscc)}/materials"
    uploaded = await client.post(
        base,
        data={"name": MATERIAL},
        files={"file": ("..\\..\\内网\\仓储\u202e证明.pdf", PDF, "application/pdf")},
        headers=tokens.enterprise(uscc),
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["filename"] == "仓储证明.pdf"
    content = await client.get(
        f"{base}/{uploaded.json()['id']}/content", headers=tokens.staff(Role.ACCEPTOR)
    )
    assert content.status_code == 200
    assert content.content == PDF
    assert content.headers["content-type"] == "application/pdf"
    assert content.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in content.headers["content-security-policy"]
    disposition = content.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "仓储证明.pdf"


async def test_a_stored_file_of_another_type_is_served_as_octet_stream(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    # A file stored before these checks, as HTML: it must never come back as text/html.
    uscc = random_uscc()
    app_id = await _application(client, tokens, uscc)
    material_id = uuid.uuid4()
    key = f"applications/{app_id}/{material_id}"
    await context_of(app).storage.put(key, HTML, content_type="text/html")
    async with app.state.sessionmaker() as session:
        await session.execute(
            insert(Material).values(
                id=material_id,
                application_id=uuid.UUID(app_id),
                name=MATERIAL,
                source="upload",
                filename="x/../\u202eevil.html",
                content_type="text/html",
                size=len(HTML),
                sha256=None,
                storage_key=key,
                licence_no=None,
                uploaded_at=datetime.now(UTC),
            )
        )
        await session.commit()
    base = f"/api/v1/applications/{app_id}/materials"
    content = await client.get(f"{base}/{material_id}/content", headers=tokens.enterprise(uscc))
    assert content.status_code == 200
    assert content.headers["content-type"] == "application/octet-stream"
    assert content.headers["x-content-type-options"] == "nosniff"
    assert content.headers["content-disposition"].startswith('attachment; filename="evil.html"')
    listed = (await client.get(base, headers=tokens.enterprise(uscc))).json()
    assert [m["filename"] for m in listed["materials"]] == ["evil.html"]


@pytest.fixture
def flow(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> Flow:
    """A fresh enterprise's application flow."""
    return Flow(client=client, tokens=tokens, uscc=random_uscc(), app=app)


async def test_sealed_documents_are_served_as_downloads(flow: Flow) -> None:
    await flow.submit()
    await flow.step("accept", Role.ACCEPTOR)
    [notice] = await flow.documents()
    response = await flow.client.get(
        f"/api/v1/applications/{flow.application_id}/documents/{notice['id']}/pdf",
        headers=flow.applicant,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == (
        f"attachment; filename=\"{notice['id']}.pdf\"; filename*=UTF-8''{notice['id']}.pdf"
    )
