"""The denominators of ``make bench``: the same stack doing only one row plus one outbox row per POST.

``create_app``: FastAPI + pydantic validation of a ~1 KB body + the SQLAlchemy ORM unit of work on
asyncpg, with no token check, no idempotency and no audit trail: the bare ORM endpoint. Its
engine (pool size and all) and its frozen start-up heap are the services' own, so that the
comparison is of the work each request does.
``create_raw_app``: the same endpoint on raw asyncpg (a pool of the engine's size, the two INSERTs
in a transaction, as one writes it by hand): the physical limit of this stack.
Run with ``uvicorn --factory bench.bare_app:create_app`` (or ``create_raw_app``);
BARE_DATABASE_URL names the database, BARE_DB_POOL_SIZE the pool (the services' default if unset;
``make bench`` gives the three apps one size that fits PostgreSQL's ``max_connections``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import JSON, DateTime, String, Text, Uuid
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from govshared.app import settled_heap
from govshared.db import make_engine
from govshared.settings import CommonSettings


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "bare_things"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(64))
    applicant_name: Mapped[str] = mapped_column(String(200))
    form: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxRow(Base):
    __tablename__ = "bare_outbox"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ThingIn(BaseModel):
    item_code: str
    business_type: str = "new"
    applicant_name: str
    form: dict[str, Any] = {}


def pool_size() -> int:
    """The pool size: BARE_DB_POOL_SIZE, else the services' default."""
    default = CommonSettings.model_fields["db_pool_size"].default
    return int(os.environ.get("BARE_DB_POOL_SIZE") or default)


def create_app() -> FastAPI:
    """The bare app."""
    engine = make_engine(os.environ["BARE_DATABASE_URL"], pool_size=pool_size())
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        with settled_heap():
            yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/things", status_code=201)
    async def create(body: ThingIn) -> dict[str, str]:
        now = datetime.now(UTC)
        thing = Thing(
            id=uuid.uuid4(),
            item_code=body.item_code,
            applicant_name=body.applicant_name,
            form=body.form,
            created_at=now,
        )
        async with sessions() as session, session.begin():
            session.add(thing)
            session.add(
                OutboxRow(
                    id=uuid.uuid4(),
                    event_type="bench.thing.created",
                    payload=body.model_dump_json(),
                    created_at=now,
                )
            )
        return {"id": str(thing.id)}

    return app


async def create_schema(url: str) -> None:
    """Create the two tables (a benchmark fixture, not a service schema)."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()


_INSERT_THING = (
    "INSERT INTO bare_things (id, item_code, applicant_name, form, created_at) "
    "VALUES ($1, $2, $3, $4::json, $5)"
)
_INSERT_OUTBOX = (
    "INSERT INTO bare_outbox (id, event_type, payload, created_at) VALUES ($1, $2, $3, $4)"
)


def create_raw_app() -> FastAPI:
    """The raw asyncpg app: the same POST, the same two rows, no SQLAlchemy."""
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(os.environ["BARE_DATABASE_URL"]).set(drivername="postgresql")
    size = pool_size()
    pool: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The engine's pool: ``size`` connections kept, half as many again in a burst.
        pool["pg"] = await asyncpg.create_pool(
            dsn.render_as_string(hide_password=False),
            min_size=size,
            max_size=size + size // 2,
            timeout=5.0,
        )
        with settled_heap():
            yield
        await pool["pg"].close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/things", status_code=201)
    async def create(body: ThingIn) -> dict[str, str]:
        now = datetime.now(UTC)
        thing_id = uuid.uuid4()
        async with pool["pg"].acquire() as connection, connection.transaction():
            await connection.execute(
                _INSERT_THING,
                thing_id,
                body.item_code,
                body.applicant_name,
                json.dumps(body.form, ensure_ascii=False),
                now,
            )
            await connection.execute(
                _INSERT_OUTBOX, uuid.uuid4(), "bench.thing.created", body.model_dump_json(), now
            )
        return {"id": str(thing_id)}

    return app
