"""Background work of approval: the outbox relay (and, as the service grows, its timers).

Runs inside the web process in the embedded default, or alone with ``python -m approval.worker``
(the same image in worker mode), so that production scales web and workers apart.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from approval.config import Settings
from approval.db import outbox_events
from govshared.auth import ServiceTokenSource
from govshared.db import make_engine, make_sessionmaker
from govshared.observability import configure_logging, make_http_client
from govshared.outbox import Destination, OutboxRelay


def build_relay(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    tokens: ServiceTokenSource,
) -> OutboxRelay:
    """The relay that posts approval's events to notify and license."""
    return OutboxRelay(
        sessionmaker=sessionmaker,
        table=outbox_events,
        destinations={
            "notify": Destination(settings.notify_events_url, tokens.token),
            "license": Destination(settings.license_events_url, tokens.token),
        },
        http=http,
        poll_interval=settings.relay_poll_seconds,
    )


async def main() -> None:
    """Run the relay until SIGTERM or SIGINT, then release claimed rows and exit."""
    settings = Settings()
    configure_logging(
        service="approval-worker", level=settings.log_level, json_logs=settings.log_json
    )
    engine = make_engine(settings.database_url, pool_size=4)
    http = make_http_client(timeout=settings.http_timeout_seconds)
    assert settings.service_private_key_file is not None
    tokens = ServiceTokenSource(
        Path(settings.service_private_key_file).read_text(), service_name="approval"
    )
    relay = build_relay(settings, sessionmaker=make_sessionmaker(engine), http=http, tokens=tokens)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(relay.run())
    await stop.wait()
    await relay.stop()
    await task
    await http.aclose()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
