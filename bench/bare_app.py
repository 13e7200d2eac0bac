"""The ceiling for ``make bench``: the same stack doing only one row plus one outbox row per POST.

FastAPI + pydantic validation of a ~1 KB body + the SQLAlchemy ORM unit of work on asyncpg, with no
token check, no idempotency and no audit trail: what the issue calls the bare ORM endpoint. Its
engine (pool size and all) and its frozen start-up heap are the services' own, so that the
comparison is of the work each request does.
Run with ``uvicorn --factory bench.bare_app:create_app``; BARE_DATABASE_URL names the database.
"""

from __future__ import annotations

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


def create_app() -> FastAPI:
    """The bare app."""
    engine = make_engine(os.environ["BARE_DATABASE_URL"])
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
