"""The approval service: ``create_app(settings)`` and the ``approval-service`` entry point."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from approval.bundles.catalogue import load_demo_bundles
from approval.bundles.routes import router as bundles_router
from approval.calendar.refresh import recompute_provisional_years
from approval.calendar.routes import router as calendar_router
from approval.calendar.service import seed_calendar
from approval.catalogue.demo import load_demo_catalogue
from approval.catalogue.routes import router as catalogue_router
from approval.clients.license import LicenseClient
from approval.clocks.routes import router as clocks_router
from approval.config import Settings
from approval.context import ApprovalContext, ChinaDay
from approval.db import metadata, outbox_events
from approval.documents.routes import public_router as verification_router
from approval.documents.routes import router as documents_router
from approval.evaluations.routes import router as evaluations_router
from approval.materials.routes import router as materials_router
from approval.routes import router
from approval.signing.config import VerifierOnFirstUse
from approval.signing.routes import router as signing_router
from approval.tasks.directory import load_demo_staff
from approval.tasks.routes import router as tasks_router
from approval.tasks.staff_routes import router as staff_router
from approval.worker import (
    SUBSCRIPTIONS,
    build_relay,
    build_sealer,
    build_sealing,
    build_timers,
    make_storage,
)
from govshared.app import create_service_app, settled_heap, start_runtime
from govshared.outbox import OutboxWriter
from govshared.retention import plumbing_retention
from govshared.wake import OUTBOX_CHANNEL

SERVICE_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = SERVICE_ROOT / "alembic.ini"


def create_app(
    settings: Settings | None = None,
    *,
    http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """Build the approval app; nothing connects until the lifespan starts.

    ``http_mounts`` routes outgoing calls by URL prefix to another transport, e.g. a peer service's
    app in the same process (tests); production leaves it empty.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(
            app, settings, service="approval", alembic_ini=ALEMBIC_INI, http_mounts=http_mounts
        )
        sessionmaker, http, tokens = runtime.sessionmaker, runtime.http, runtime.tokens
        license_client = LicenseClient(
            base_url=settings.license_url,
            http=http,
            tokens=tokens,
            cache_seconds=settings.reform_mode_cache_seconds,
        )
        outbox = OutboxWriter(outbox_events, SUBSCRIPTIONS)
        # The China date every clock counts in; tests pin it.
        today = ChinaDay()
        storage = make_storage(settings)
        sealing = build_sealing(settings, http, storage=storage)
        # Working-day calendar from the maintained library; safe when replicas start together.
        async with sessionmaker() as session, session.begin():
            await seed_calendar(session)
            # Provisional years stored before they kept the statutory holidays are brought in step.
            await recompute_provisional_years(
                session, outbox=outbox, today=today(), warn_days=settings.clock_warn_days
            )
        if settings.load_demo_catalogue:
            async with sessionmaker() as session, session.begin():
                await load_demo_catalogue(session)
            async with sessionmaker() as session, session.begin():
                await load_demo_bundles(session)
            async with sessionmaker() as session, session.begin():
                await load_demo_staff(session)  # the demo's staff directory (review chains)
        relay = build_relay(settings, sessionmaker=sessionmaker, http=http, tokens=tokens)
        timers = build_timers(settings, sessionmaker=sessionmaker, outbox=outbox)
        sealer = build_sealer(settings, sessionmaker=sessionmaker, sealing=sealing, outbox=outbox)
        context = ApprovalContext(
            settings=settings,
            sessionmaker=sessionmaker,
            http=http,
            license_client=license_client,
            outbox=outbox,
            today=today,
            storage=storage,
            sealing=sealing,
            relay=relay,
            timers=timers,
            sealer=sealer,
            verifier=VerifierOnFirstUse(settings, http=http),
        )
        app.state.context = context
        tasks: list[asyncio.Task[None]] = []
        retention = plumbing_retention(sessionmaker, metadata)
        if settings.run_workers:
            outbox.on_commit(relay.wake)
            outbox.on_commit(sealer.wake)
            tasks.append(asyncio.create_task(relay.run(), name="approval-outbox-relay"))
            tasks.append(asyncio.create_task(timers.run(), name="approval-clock-timers"))
            tasks.append(asyncio.create_task(sealer.run(), name="approval-document-sealer"))
            tasks.append(asyncio.create_task(retention.run(), name="approval-retention"))
        elif runtime.signal is not None:
            # The relay and the sealer run in the worker process: a commit with events (and with
            # them any document to seal) wakes it through PostgreSQL.
            outbox.on_commit(runtime.signal.hook(OUTBOX_CHANNEL))
        try:
            with settled_heap():
                yield
        finally:
            if tasks:
                retention.stop()
                await relay.stop()
                await timers.stop()
                sealer.stop()
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await runtime.close()

    return create_service_app(
        service="approval",
        title="审批服务 Approval API",
        description="事项目录、办事指南与行政许可申请的全流程 (一网通办)",
        version="1.0.0",
        lifespan=lifespan,
        routers=[  # hottest first: the submission and the lifecycle actions
            router,
            catalogue_router,
            bundles_router,
            clocks_router,
            materials_router,
            evaluations_router,
            calendar_router,
            documents_router,
            verification_router,
            signing_router,
            tasks_router,
            staff_router,
        ],
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
