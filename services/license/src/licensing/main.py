"""The license service: ``create_app(settings)`` and the ``license-service`` entry point."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from govshared.app import create_service_app, settled_heap, start_runtime
from govshared.retention import plumbing_retention
from govshared.storage import storage_from_settings
from govshared.wake import OUTBOX_CHANNEL, SEALER_CHANNEL
from licensing.catalogue.service import load_demo_catalogue
from licensing.config import Settings
from licensing.context import LicenseContext
from licensing.db import metadata
from licensing.routes import routers
from licensing.worker import (
    LicenceTimers,
    build_calendar,
    build_outbox,
    build_policy,
    build_relay,
    build_sealer,
    build_sealing,
)

SERVICE_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = SERVICE_ROOT / "alembic.ini"


def create_app(
    settings: Settings | None = None,
    *,
    http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """Build the license app; nothing connects until the lifespan starts.

    ``http_mounts`` routes outgoing calls by URL prefix to another transport, e.g. a peer service's
    app in the same process (tests); production leaves it empty.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(
            app, settings, service="license", alembic_ini=ALEMBIC_INI, http_mounts=http_mounts
        )
        sessionmaker, http, tokens = runtime.sessionmaker, runtime.http, runtime.tokens
        outbox = build_outbox(settings)
        sealing = build_sealing(settings, http)
        policy = build_policy(settings)
        if settings.load_demo_catalogue:
            async with sessionmaker() as session, session.begin():
                await load_demo_catalogue(session)
        relay = build_relay(settings, sessionmaker=sessionmaker, http=http, tokens=tokens)
        timers = LicenceTimers(
            sessionmaker=sessionmaker,
            outbox=outbox,
            sealing=sealing,
            policy=policy,
            poll_seconds=settings.timer_poll_seconds,
            reinspection_working_days=settings.reinspection_working_days,
        )
        sealer = build_sealer(settings, sessionmaker=sessionmaker, sealing=sealing, outbox=outbox)
        context = LicenseContext(
            settings=settings,
            sessionmaker=sessionmaker,
            outbox=outbox,
            sealing=sealing,
            policy=policy,
            evidence_storage=storage_from_settings(
                settings, folder="inspection-evidence", env_prefix="LICENSE_"
            ),
            relay=relay,
            timers=timers,
            sealer=sealer,
        )
        app.state.context = context
        # Every process counts working days by the official schedules kept (the workers, here or
        # apart, fetch them from approval): read once before serving, then refreshed.
        calendar = build_calendar(
            settings, sessionmaker=sessionmaker, http=http, fetch=settings.run_workers
        )
        await calendar.reload()
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(calendar.run(), name="license-official-calendar")
        ]
        retention = plumbing_retention(sessionmaker, metadata)
        if settings.run_workers:
            outbox.on_commit(relay.wake)
            sealing.on_registered(sealer.wake)
            tasks.append(asyncio.create_task(relay.run(), name="license-outbox-relay"))
            tasks.append(asyncio.create_task(timers.run(), name="license-timers"))
            tasks.append(asyncio.create_task(sealer.run(), name="license-certificate-sealer"))
            tasks.append(asyncio.create_task(retention.run(), name="license-retention"))
        elif runtime.signal is not None:
            # Relay and sealer run in the worker process: commits wake it through PostgreSQL.
            outbox.on_commit(runtime.signal.hook(OUTBOX_CHANNEL))
            sealing.on_registered(runtime.signal.hook(SEALER_CHANNEL))
        try:
            with settled_heap():
                yield
        finally:
            calendar.stop()
            if settings.run_workers:
                retention.stop()
                timers.stop()
                sealer.stop()
                await relay.stop()
            if tasks:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await runtime.close()

    return create_service_app(
        service="license",
        title="证照服务 License API",
        description="证照分离改革事项目录与电子证照库 (一网通办)",
        version="1.0.0",
        lifespan=lifespan,
        routers=routers,
        alembic_ini=ALEMBIC_INI,
        cors_origins=settings.cors_origins,
        limits=settings,
    )


def run() -> None:
    """Serve with uvicorn on the configured host and port."""
    import uvicorn

    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=20,
        ws="none",  # no WebSocket route: uvicorn then never imports a WebSocket library
        # uvicorn's own header limit where its parser has one (h11); the middleware checks too.
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )


if __name__ == "__main__":
    run()
