"""Background work of approval: the outbox relay and the clock timers.

Runs inside the web process in the embedded default, or alone with ``python -m approval.worker``
(the same image in worker mode), so that production scales web and workers apart.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import UTC, date, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from approval.bundles.decided import decide_bundles
from approval.clocks.timers import ClockTimers, TimerRun
from approval.config import Settings
from approval.db import metadata, outbox_events
from approval.documents.sealer import DocumentSealer
from approval.documents.service import Sealing
from approval.tasks.timers import OpinionTimers
from govshared.app import settled_heap
from govshared.auth import ServiceTokenSource, service_tokens
from govshared.chinatime import china_today
from govshared.db import engine_from_settings, make_sessionmaker
from govshared.loops import BackgroundLoop
from govshared.observability import configure_logging, make_http_client, serve_worker_metrics
from govshared.outbox import Destination, OutboxRelay, OutboxWriter
from govshared.retention import plumbing_retention
from govshared.seal import seal_book_from_settings
from govshared.sql import use_driver
from govshared.storage import Storage, storage_from_settings
from govshared.wake import OUTBOX_CHANNEL, wake_listener

logger = logging.getLogger(__name__)

# Which destinations receive which events (the relay knows their URLs).
SUBSCRIPTIONS = {
    "notify": [
        "cn.gov.approval.application.*",
        "cn.gov.approval.document.*",
        "cn.gov.approval.bundle.*",
    ],
    # The licence register acts on approvals (issue, change, renew, 注销), and on the renewal
    # applications filed here from the day they arrive until they end (Art. 50: a timely one keeps
    # the licence alive past its expiry); it tracks every application's entry and settlement for
    # the enterprise's 证照分离 status.
    "license": [
        f"cn.gov.approval.application.{state}.*"
        for state in ("submitted", "filed", "rejected", "withdrawn", "denied", "approved")
    ],
}


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
            "notify": Destination(settings.notify_events_url, tokens.for_service("notify")),
            "license": Destination(settings.license_events_url, tokens.for_service("license")),
        },
        http=http,
        poll_interval=settings.relay_poll_seconds,
        lease_seconds=settings.relay_lease_seconds,
        probe_max_seconds=settings.relay_probe_max_seconds,
    )


class TimerWorker:
    """Runs the clock timers every ``poll_interval`` seconds until stopped.

    Each batch is one transaction that claims its clocks, fires them and sets their markers, so a
    crash or a restart between batches loses and repeats nothing; any number of replicas may run.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        outbox: OutboxWriter,
        warn_days: int,
        poll_interval: float = 60.0,
        batch_size: int = 100,
        today: Callable[[], date] = china_today,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._outbox = outbox
        self._warn_days = warn_days
        self._batch_size = batch_size
        self._today = today
        self._loop = BackgroundLoop(
            self._pass, what="clock timer run", poll_seconds=poll_interval, log=logger
        )

    async def run_once(self, *, today: date | None = None) -> TimerRun:
        """Fire everything due on ``today`` (China date; default: now), batch after batch."""
        day = today or self._today()
        total = TimerRun()
        while True:
            async with self._sessionmaker() as session, session.begin():
                timers = ClockTimers(session, outbox=self._outbox, warn_days=self._warn_days)
                run = await timers.fire(today=day, now=datetime.now(UTC), limit=self._batch_size)
            total.deemed_accepted += run.deemed_accepted
            total.warned += run.warned
            total.overdue += run.overdue
            total.examined += run.examined
            total.tolerances_overdue += run.tolerances_overdue
            if run.examined < self._batch_size:
                await self.settle_opinions(day, total)
                await self.decide_bundles()
                return total

    async def settle_opinions(self, day: date, total: TimerRun) -> None:
        """Overdue consulted opinions: escalated to the government head or deemed agreement,
        each once (approval/tasks/timers.py), batch after batch."""
        while True:
            async with self._sessionmaker() as session, session.begin():
                timers = OpinionTimers(session, outbox=self._outbox)
                run = await timers.fire(today=day, now=datetime.now(UTC), limit=self._batch_size)
            total.opinions_escalated += run.escalated
            total.opinions_deemed += run.deemed
            if run.examined < self._batch_size:
                return

    async def decide_bundles(self) -> int:
        """The combined notice of each bundle application whose items are all decided."""
        async with self._sessionmaker() as session, session.begin():
            return await decide_bundles(session, outbox=self._outbox, limit=self._batch_size)

    async def _pass(self) -> bool:
        await self.run_once()
        return False  # run_once fired everything due

    async def run(self) -> None:
        """Loop until ``stop``; a failing run is logged and retried (``govshared.loops``)."""
        await self._loop.run()

    async def stop(self) -> None:
        """Ask the loop to finish after the current run."""
        self._loop.stop()


def make_storage(settings: Settings) -> Storage:
    """Where materials and sealed documents are kept (the settings choose)."""
    return storage_from_settings(settings, folder="materials", env_prefix="APPROVAL_")


def build_sealing(settings: Settings, http: httpx.AsyncClient, *, storage: Storage) -> Sealing:
    """The seal the settings choose (``APPROVAL_SEAL_*``), where documents are stored, and the
    public verification page their QR codes open."""
    return Sealing(
        seals=seal_book_from_settings(settings, http),
        storage=storage,
        public_base_url=settings.public_base_url,
    )


def build_sealer(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    sealing: Sealing,
    outbox: OutboxWriter,
) -> DocumentSealer:
    """The document sealer with the settings' poll interval and batch size."""
    return DocumentSealer(
        sessionmaker=sessionmaker,
        sealing=sealing,
        outbox=outbox,
        poll_interval=settings.sealer_poll_seconds,
        batch_size=settings.sealer_batch_size,
    )


def build_timers(
    settings: Settings, *, sessionmaker: async_sessionmaker[AsyncSession], outbox: OutboxWriter
) -> TimerWorker:
    """The timer worker with the settings' warning days and poll interval."""
    return TimerWorker(
        sessionmaker=sessionmaker,
        outbox=outbox,
        warn_days=settings.clock_warn_days,
        poll_interval=settings.timer_poll_seconds,
    )


async def main() -> None:
    """Run the relay, the timers and the sealer until SIGTERM or SIGINT, then exit cleanly."""
    settings = Settings()
    serve_worker_metrics(host=settings.host, port=settings.worker_metrics_port)
    configure_logging(
        service="approval-worker", level=settings.log_level, json_logs=settings.log_json
    )
    use_driver(settings.sql_on_driver)
    engine = engine_from_settings(settings, pool_size=4)
    http = make_http_client(timeout=settings.http_timeout_seconds)
    assert settings.service_private_key_file is not None
    tokens = service_tokens(settings, service_name="approval")
    sessionmaker = make_sessionmaker(engine)
    relay = build_relay(settings, sessionmaker=sessionmaker, http=http, tokens=tokens)
    outbox = OutboxWriter(outbox_events, SUBSCRIPTIONS)
    timers = build_timers(settings, sessionmaker=sessionmaker, outbox=outbox)
    sealing = build_sealing(settings, http, storage=make_storage(settings))
    sealer = build_sealer(settings, sessionmaker=sessionmaker, sealing=sealing, outbox=outbox)
    # A sealed document's event goes out at once rather than at the relay's next poll.
    outbox.on_commit(relay.wake)
    # The web processes' commits wake relay and sealer through PostgreSQL (the poll stays).
    listener = wake_listener(settings.database_url, {OUTBOX_CHANNEL: [relay.wake, sealer.wake]})
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    retention = plumbing_retention(sessionmaker, metadata)
    tasks = [
        asyncio.create_task(relay.run()),
        asyncio.create_task(timers.run()),
        asyncio.create_task(sealer.run()),
        asyncio.create_task(retention.run()),
    ]
    with settled_heap():
        await stop.wait()
    if listener is not None:
        await listener.stop()
    retention.stop()
    await relay.stop()
    await timers.stop()
    sealer.stop()
    await asyncio.gather(*tasks)
    await http.aclose()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
