"""The sealer: pending documents sealed once each, whatever the number of workers."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import zxingcpp
from fastapi import FastAPI
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from approval.context import context_of
from approval.db import outbox_events
from approval.documents.render import extract_text
from approval.documents.sealer import DocumentSealer
from govshared.auth import Role
from govshared.testing import Tokens, random_uscc

from .conftest import Flow


def flat(text: str) -> str:
    return "".join(text.split())


def page_content(pdf: bytes) -> bytes:
    return PdfReader(io.BytesIO(pdf)).pages[0].get_contents().get_data()


def qr_image(path: bytes, scale: int = 4) -> Image.Image:
    """The QR code a page's path draws (rows of ``x 0 w 1 re`` runs, each row one unit below the
    one before), black on white with its quiet zone, for zxing-cpp to read."""
    rows: list[list[tuple[int, int]]] = [[]]
    for found in re.finditer(rb"1 0 0 1 0 -1 cm|(\d+) 0 (\d+) 1 re", path):
        if found.group(1) is None:
            rows.append([])
        else:
            rows[-1].append((int(found.group(1)), int(found.group(2))))
    count = len(rows) - 1
    image = Image.new("L", ((count + 8) * scale,) * 2, 255)
    for row, runs in enumerate(rows[:count]):
        for x, width in runs:
            left, top = (x + 4) * scale, (row + 4) * scale
            image.paste(0, (left, top, left + width * scale, top + scale))
    return image


async def test_two_sealers_side_by_side_seal_each_document_once(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    flows = [Flow(client=client, tokens=tokens, uscc=random_uscc(), app=app) for _ in range(6)]
    for flow in flows:
        await flow.submit()
        await flow.step("accept", Role.ACCEPTOR)
    second = DocumentSealer(
        sessionmaker=app.state.sessionmaker,
        sealing=context_of(app).sealing,
        outbox=context_of(app).outbox,
        batch_size=2,
    )
    waiting = await context_of(app).sealer.pending()
    assert waiting >= 6
    runs = await asyncio.gather(context_of(app).sealer.run_once(), second.run_once())
    assert sum(r.failed for r in runs) == 0

    numbers = []
    for flow in flows:
        [acceptance] = await flow.documents()
        assert acceptance["status"] == "valid" and acceptance["pdf_sha256"]
        numbers.append(acceptance["number"])
    async with app.state.sessionmaker() as session:
        payloads = (
            await session.scalars(
                select(outbox_events.c.payload).where(
                    outbox_events.c.event_type == "cn.gov.approval.document.issued.v1"
                )
            )
        ).all()
    issued = [json.loads(p)["data"]["document"]["number"] for p in payloads]
    # One event per document (per subscriber: notify alone receives document events).
    assert sorted(n for n in issued if n in numbers) == sorted(numbers)
    assert await context_of(app).sealer.pending() <= waiting - 6


async def test_a_batch_sealed_together_verifies_one_by_one(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """One claimed batch (one UPDATE and one outbox insert for all): each document's PDF carries
    its own content, seal and QR code, and verifies on its own, by upload and by its QR code."""
    flows = [Flow(client=client, tokens=tokens, uscc=random_uscc(), app=app) for _ in range(4)]
    for n, flow in enumerate(flows):
        await flow.submit()
        await flow.step("accept", Role.ACCEPTOR)
        if n % 2:
            await flow.step("review", Role.REVIEWER, opinion="材料齐全")
            await flow.step("approve", Role.APPROVER, opinion="同意设置")
    sealer = DocumentSealer(
        sessionmaker=app.state.sessionmaker,
        sealing=context_of(app).sealing,
        outbox=context_of(app).outbox,
        batch_size=50,
    )
    run = await sealer.run_once()
    assert run.failed == 0 and 6 <= run.sealed < 50  # one batch

    seen: set[str] = set()
    for flow in flows:
        for document in await flow.documents():
            assert document["status"] == "valid"
            pdf = await flow.pdf(document)
            assert hashlib.sha256(pdf).hexdigest() == document["pdf_sha256"]
            assert flat(document["number"]) in flat(extract_text(pdf))
            uploaded = await client.post(
                "/api/v1/documents/verify", files={"file": ("d.pdf", pdf, "application/pdf")}
            )
            verified = uploaded.json()
            assert verified["genuine"] is True and verified["failure"] is None, verified
            assert verified["number"] == document["number"]
            [qr] = re.findall(rb"cm\n(1 0 0 1 0 \d+ cm\n.*?)\nQ", page_content(pdf), re.S)
            [code] = zxingcpp.read_barcodes(qr_image(qr), formats=zxingcpp.BarcodeFormat.QRCode)
            query = parse_qs(urlsplit(code.text).query)
            assert query == {"number": [document["number"]], "digest": [document["content_digest"]]}
            by_qr = await client.get("/api/v1/documents/verify", params=query)
            assert by_qr.json()["genuine"] is True
            seen.add(document["number"])
    assert len(seen) == 6  # four acceptance notices, two decisions
