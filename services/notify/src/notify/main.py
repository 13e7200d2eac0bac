"""The notify service: ``create_app(settings)`` and the ``notify-service`` entry point."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from govshared.app import create_service_app, settled_heap, start_runtime
from govshared.retention import plumbing_retention
from govshared.wake import DELIVERY_CHANNEL, INBOX_CHANNEL, OUTBOX_CHANNEL, wake_listener
from notify.config import Settings
from notify.context import NotifyContext
from notify.db import metadata
from notify.deliveries import WakeHook, Wakeups
from notify.documents import DocumentLinks
from notify.inbox import InboxSignal
from notify.routes import router
from notify.worker import (
    DeliveryWorker,
    build_documents,
    build_proof,
    build_relay,
    build_senders,
)

SERVICE_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = SERVICE_ROOT / "alembic.ini"


def create_app(
    settings: Settings | None = None,
    *,
    http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """Build the notify app; nothing connects until the lifespan starts.

    ``http_mounts`` routes outgoing calls by URL prefix to another transport, e.g. a peer service's
    app in the same process (tests); production leaves it empty.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(
            app, settings, service="notify", alembic_ini=ALEMBIC_INI, http_mounts=http_mounts
        )
        sessionmaker, http, tokens = runtime.sessionmaker, runtime.http, runtime.tokens
        inbox_signal = InboxSignal()
        relay = build_relay(settings, sessionmaker=sessionmaker, http=http, tokens=tokens)
        proof = build_proof()
        senders = build_senders(settings, http=http)
        worker = DeliveryWorker(
            sessionmaker=sessionmaker,
            settings=settings,
            senders=senders,
            proof=proof,
            documents=build_documents(settings, http=http, tokens=tokens),
        )
        # What a commit that queued deliveries wakes: the worker here, or in its own process
        # through PostgreSQL (nothing on SQLite without workers here: they poll).
        on_queued: WakeHook | None = None
        if settings.run_workers:
            on_queued = worker.wake
        elif runtime.signal is not None:
            on_queued = runtime.signal.hook(DELIVERY_CHANNEL)
        # What a commit of inbox messages wakes: this process's streams at once and, on
        # PostgreSQL without workers here (production: several web replicas, the delivery worker
        # in its own process), every other process's through NOTIFY; each web process listens.
        on_inbox: WakeHook = inbox_signal.notify
        inbox_listener = None
        if runtime.signal is not None:
            announce = runtime.signal.hook(INBOX_CHANNEL)

            def on_inbox(session: Any = None) -> None:
                inbox_signal.notify()
                announce(session)

            inbox_listener = wake_listener(
                settings.database_url, {INBOX_CHANNEL: [inbox_signal.notify]}
            )
        app.state.inbox_listener = inbox_listener
        app.state.context = NotifyContext(
            settings=settings,
            sessionmaker=sessionmaker,
            proof=proof,
            links=DocumentLinks.from_settings(settings),
            inbox_signal=inbox_signal,
            wakeups=Wakeups(
                on_queued=on_queued,
                on_inbox=on_inbox,
            ),
            relay=relay,
            delivery_worker=worker,
        )
        tasks: list[asyncio.Task[None]] = []
        retention = plumbing_retention(sessionmaker, metadata)
        if settings.run_workers:
            proof.wake = relay.wake
            for writer in proof.writers():
                writer.on_commit(relay.wake)
            tasks.append(asyncio.create_task(relay.run(), name="notify-outbox-relay"))
            tasks.append(asyncio.create_task(worker.run(), name="notify-delivery-worker"))
            tasks.append(asyncio.create_task(retention.run(), name="notify-retention"))
        elif runtime.signal is not None:
            for writer in proof.writers():
                writer.on_commit(runtime.signal.hook(OUTBOX_CHANNEL))
        try:
            with settled_heap():
                yield
        finally:
            if tasks:
                retention.stop()
                await worker.stop()
                await relay.stop()
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if inbox_listener is not None:
                await inbox_listener.stop()
            for sender in senders.values():
                await sender.aclose()
            await runtime.close()

    return create_service_app(
        service="notify",
        title="通知服务 Notify API",
        description="站内信、电子邮件、短信与企业回调通知，送达回执与死信重放 (一网通办)",
        version="1.0.0",
        lifespan=lifespan,
        routers=[router],
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
