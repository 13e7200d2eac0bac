"""The sealer: pending documents sealed once each, whatever the number of workers."""

from __future__ import annotations

import asyncio
import json

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from approval.context import context_of
from approval.db import outbox_events
from approval.documents.sealer import DocumentSealer
from govshared.auth import Role
from govshared.testing import Tokens, random_uscc

from .conftest import Flow


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
