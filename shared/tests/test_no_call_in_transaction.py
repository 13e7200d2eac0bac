"""No network call with the request's transaction open: the suite's HTTP client and the object
storage refuse it.

A call to another service (or to S3) made while the request holds a transaction keeps a pooled
connection, row locks (PostgreSQL) or SQLite's write lock (``BEGIN IMMEDIATE``) for as long as
the other side takes. ``make_http_client`` checks before each request it sends, both storage
backends before each put, get and delete (the folder too: tests store in one); a route that reads,
ends its read (``end_read``) and then calls is fine; workers (no request) are not concerned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.db import (
    AutoCommitRoute,
    TransactionOpenDuringCall,
    end_read,
    get_session,
    make_engine,
    make_sessionmaker,
    no_transaction_open,
)
from govshared.observability import make_http_client
from govshared.storage import FileSystemStorage, S3Storage, Storage
from govshared.testing import BACKENDS, drop_postgres_database, make_database

PEER = "http://peer.test"


def _peer(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


def _unreachable_s3() -> S3Storage:
    # Nothing listens there: a call that got past the guard would fail with 503, not with it.
    return S3Storage(
        endpoint="http://127.0.0.1:9",
        bucket="evidence",
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        timeout_seconds=0.5,
    )


def _app(url: str, folder: Path) -> FastAPI:
    engine = make_engine(url)
    stores: dict[str, Storage] = {"folder": FileSystemStorage(folder), "s3": _unreachable_s3()}
    http = make_http_client(mounts={PEER: httpx.MockTransport(_peer)})
    app = FastAPI()
    router = APIRouter(route_class=AutoCommitRoute)

    @router.post("/read-then-call")
    async def read_then_call(
        ended: bool, session: AsyncSession = Depends(get_session)
    ) -> dict[str, bool]:
        await session.execute(text("SELECT 1"))
        if ended:
            await end_read(session)
        return (await http.get(f"{PEER}/facts")).json()

    @router.post("/call-first")
    async def call_first(session: AsyncSession = Depends(get_session)) -> dict[str, bool]:
        answer = (await http.get(f"{PEER}/facts")).json()
        await session.execute(text("SELECT 1"))
        return answer

    @router.post("/read-then-store")
    async def read_then_store(
        store: str, operation: str, ended: bool, session: AsyncSession = Depends(get_session)
    ) -> dict[str, str]:
        await session.execute(text("SELECT 1"))
        if ended:
            await end_read(session)
        storage = stores[store]
        if operation == "put":
            await storage.put("blobs/a", b"%PDF-1.7", content_type="application/pdf")
        elif operation == "get":
            return {"data": (await storage.get("blobs/a")).decode()}
        else:
            await storage.delete("blobs/a")
        return {}

    app.include_router(router)
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.http = http
    return app


@pytest.fixture(params=BACKENDS)
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    url = await make_database(request.param, prefix="nocall_test", directory=tmp_path)
    app = _app(url, tmp_path / "blobs")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as c:
        yield c
    await app.state.http.aclose()
    await app.state.engine.dispose()
    if request.param == "postgresql":
        await drop_postgres_database(url)


async def test_a_call_with_the_requests_transaction_open_fails(client: httpx.AsyncClient) -> None:
    with pytest.raises(TransactionOpenDuringCall):
        await client.post("/read-then-call", params={"ended": "false"})


async def test_a_call_after_the_read_ended_or_before_it_goes_through(
    client: httpx.AsyncClient,
) -> None:
    ended = await client.post("/read-then-call", params={"ended": "true"})
    assert ended.status_code == 200 and ended.json() == {"ok": True}
    first = await client.post("/call-first")
    assert first.status_code == 200 and first.json() == {"ok": True}


@pytest.mark.parametrize("store", ["folder", "s3"])
@pytest.mark.parametrize("operation", ["put", "get", "delete"])
async def test_a_storage_call_with_the_requests_transaction_open_fails(
    client: httpx.AsyncClient, store: str, operation: str
) -> None:
    with pytest.raises(TransactionOpenDuringCall, match=f"storage: {operation} blobs/a"):
        await client.post(
            "/read-then-store", params={"store": store, "operation": operation, "ended": "false"}
        )


async def test_a_storage_call_after_the_read_ended_goes_through(client: httpx.AsyncClient) -> None:
    for operation in ("put", "get", "delete"):
        answer = await client.post(
            "/read-then-store", params={"store": "folder", "operation": operation, "ended": "true"}
        )
        assert answer.status_code == 200
        if operation == "get":
            assert answer.json() == {"data": "%PDF-1.7"}


async def test_outside_a_request_the_guard_has_nothing_to_say() -> None:
    # A worker's task: no request, no request's session (its own transactions are its business).
    no_transaction_open("anything")
