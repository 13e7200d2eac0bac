"""Background work of license: the outbox relay, the timers (licence reminders and expiry,
missed 限期整改 deadlines of inspections) and the certificate sealer.

Runs inside the web process in the embedded default, or alone with ``python -m licensing.worker``
(the same image in worker mode), so that production scales web and workers apart. Timers and the
sealer claim their rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that worker replicas share
the work.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import date

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.app import settled_heap
from govshared.auth import ServiceTokenSource, service_tokens
from govshared.db import engine_from_settings, make_sessionmaker
from govshared.loops import BackgroundLoop
from govshared.observability import configure_logging, make_http_client, serve_worker_metrics
from govshared.outbox import Destination, OutboxRelay, OutboxWriter
from govshared.retention import plumbing_retention
from govshared.seal import seal_book_from_settings
from govshared.sql import use_driver
from govshared.storage import Storage, storage_from_settings
from govshared.wake import OUTBOX_CHANNEL, SEALER_CHANNEL, wake_listener
from licensing import clock
from licensing.calendar import OfficialCalendar
from licensing.certificates.sealer import CertificateSealer
from licensing.certificates.service import Sealing
from licensing.config import Settings
from licensing.db import metadata, outbox_events
from licensing.inspections.corrections import Consequences
from licensing.licences.policy import LicencePolicy
from licensing.licences.records import LicenceRecords
from licensing.licences.timers import LicenceTimerRules, TimerRun

logger = logging.getLogger("licensing.worker")

# Which destinations receive which events (the relay knows their URLs).
SUBSCRIPTIONS = {
    "notify": ["cn.gov.license.licence.*"],
    # Art. 44: approval records that the licence was delivered within its limit: issued on a new
    # application, changed or renewed on the holder's.
    "approval": [
        "cn.gov.license.licence.issued.*",
        "cn.gov.license.licence.changed.*",
        "cn.gov.license.licence.renewed.*",
    ],
}


def build_outbox(settings: Settings) -> OutboxWriter:
    """The outbox writer with license's subscriptions (approval's only when it has a URL)."""
    subscriptions = {
        destination: patterns
        for destination, patterns in SUBSCRIPTIONS.items()
        if destination != "approval" or settings.approval_events_url
    }
    return OutboxWriter(outbox_events, subscriptions)


def build_relay(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    tokens: ServiceTokenSource,
) -> OutboxRelay:
    """The relay that posts license's events to notify and approval."""
    return OutboxRelay(
        sessionmaker=sessionmaker,
        table=outbox_events,
        destinations={
            "notify": Destination(settings.notify_events_url, tokens.for_service("notify")),
            **(
                {
                    "approval": Destination(
                        settings.approval_events_url, tokens.for_service("approval")
                    )
                }
                if settings.approval_events_url
                else {}
            ),
        },
        http=http,
        poll_interval=settings.relay_poll_seconds,
        lease_seconds=settings.relay_lease_seconds,
        probe_max_seconds=settings.relay_probe_max_seconds,
    )


def build_storage(settings: Settings) -> Storage:
    """Where sealed certificates are kept: S3-compatible storage, or data_dir/certificates."""
    return storage_from_settings(settings, folder="certificates", env_prefix="LICENSE_")


def build_sealing(settings: Settings, http: httpx.AsyncClient) -> Sealing:
    """The seal, the store and the public verification URL of certificates."""
    return Sealing(
        seals=seal_book_from_settings(settings, http),
        storage=build_storage(settings),
        verify_url=settings.verify_url,
    )


def build_sealer(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    sealing: Sealing,
    outbox: OutboxWriter,
) -> CertificateSealer:
    """The certificate sealer with the settings' poll interval and batch size."""
    return CertificateSealer(
        sessionmaker=sessionmaker,
        sealing=sealing,
        outbox=outbox,
        poll_seconds=settings.sealer_poll_seconds,
        batch_size=settings.sealer_batch_size,
    )


def build_calendar(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    fetch: bool,
) -> OfficialCalendar:
    """The official holiday schedules: fetched from approval where the workers run (``fetch``),
    re-read from the database by every process."""
    return OfficialCalendar(
        sessionmaker=sessionmaker,
        http=http,
        approval_url=settings.approval_url,
        fetch=fetch,
        poll_seconds=settings.calendar_refresh_seconds,
    )


def build_policy(settings: Settings) -> LicencePolicy:
    """The register's rules from settings."""
    return LicencePolicy(
        renewal_lead_days=settings.renewal_lead_days,
        late_renewal=settings.late_renewal,
        reminder_days=tuple(settings.renewal_reminder_days),
        verification_days=settings.commitment_verification_days,
        on_site_share=settings.commitment_on_site_share,
        inspectors=tuple(settings.inspectors),
    )


class LicenceTimers:
    """Expiry, deemed renewal (Art. 50), renewal reminders and missed correction deadlines of
    inspections, claimed from the database."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        outbox: OutboxWriter,
        sealing: Sealing,
        policy: LicencePolicy,
        poll_seconds: float,
        reinspection_working_days: int,
        batch_size: int = 100,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._outbox = outbox
        self._sealing = sealing
        self._policy = policy
        self._reinspection_working_days = reinspection_working_days
        self._batch_size = batch_size
        self.corrections_missed = 0
        self._loop = BackgroundLoop(
            self._pass, what="licence timer pass", poll_seconds=poll_seconds, log=logger
        )

    async def run_once(self, today: date | None = None) -> TimerRun:
        """One pass over every due licence, one transaction per batch."""
        today = today or clock.today()
        run = TimerRun()
        for step in (
            LicenceTimerRules.end_suspensions,
            LicenceTimerRules.expire_due,
            LicenceTimerRules.send_reminders,
        ):
            while True:
                async with self._sessionmaker() as session, session.begin():
                    rules = LicenceTimerRules(
                        LicenceRecords(
                            session,
                            outbox=self._outbox,
                            sealing=self._sealing,
                            policy=self._policy,
                        )
                    )
                    claimed = await step(rules, today=today, limit=self._batch_size, run=run)
                if claimed < self._batch_size or step is LicenceTimerRules.send_reminders:
                    # Reminders already sent stay claimable until their stage moves; one pass each.
                    break
        await self.miss_corrections(today)
        return run

    async def miss_corrections(self, today: date) -> int:
        """Correction orders of inspections whose re-inspection is overdue without finding them
        put right: each is marked missed once, with its credit record, proposal and notices."""
        missed = 0
        while True:
            async with self._sessionmaker() as session, session.begin():
                consequences = Consequences(
                    session,
                    outbox=self._outbox,
                    reinspection_working_days=self._reinspection_working_days,
                )
                claimed = await consequences.miss_overdue(today=today, limit=self._batch_size)
            missed += claimed
            if claimed < self._batch_size:
                break
        self.corrections_missed += missed
        if missed:
            logger.info("correction deadlines missed", extra={"corrections_missed": missed})
        return missed

    async def _pass(self) -> bool:
        run = await self.run_once()
        if run.licence_nos:
            logger.info(
                "licence timers ran",
                extra={
                    "expired": run.expired,
                    "deemed_renewed": run.deemed_renewed,
                    "reminded": run.reminded,
                    "reinstated": run.reinstated,
                },
            )
        return False  # run_once went through every due licence

    async def run(self) -> None:
        """Run until stopped; errors are logged and retried (``govshared.loops``), never fatal."""
        await self._loop.run()

    def stop(self) -> None:
        """Stop after the current pass."""
        self._loop.stop()


async def main() -> None:
    """Run the relay, the timers and the sealer until SIGTERM or SIGINT."""
    settings = Settings()
    serve_worker_metrics(host=settings.host, port=settings.worker_metrics_port)
    configure_logging(
        service="license-worker", level=settings.log_level, json_logs=settings.log_json
    )
    use_driver(settings.sql_on_driver)
    engine = engine_from_settings(settings, pool_size=4)
    sessionmaker = make_sessionmaker(engine)
    http = make_http_client(timeout=settings.http_timeout_seconds)
    assert settings.service_private_key_file is not None
    tokens = service_tokens(settings, service_name="license")
    outbox = build_outbox(settings)
    relay = build_relay(settings, sessionmaker=sessionmaker, http=http, tokens=tokens)
    outbox.on_commit(relay.wake)
    sealing = build_sealing(settings, http)
    sealer = build_sealer(settings, sessionmaker=sessionmaker, sealing=sealing, outbox=outbox)
    # A deemed renewal by the timers is sealed at once rather than at the sealer's next poll.
    sealing.on_registered(sealer.wake)
    timers = LicenceTimers(
        sessionmaker=sessionmaker,
        outbox=outbox,
        sealing=sealing,
        policy=build_policy(settings),
        poll_seconds=settings.timer_poll_seconds,
        reinspection_working_days=settings.reinspection_working_days,
    )
    # The web processes' commits wake relay and sealer through PostgreSQL (the poll stays).
    listener = wake_listener(
        settings.database_url, {OUTBOX_CHANNEL: [relay.wake], SEALER_CHANNEL: [sealer.wake]}
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    calendar = build_calendar(settings, sessionmaker=sessionmaker, http=http, fetch=True)
    retention = plumbing_retention(sessionmaker, metadata)
    tasks = [
        asyncio.create_task(relay.run()),
        asyncio.create_task(timers.run()),
        asyncio.create_task(sealer.run()),
        asyncio.create_task(calendar.run()),
        asyncio.create_task(retention.run()),
    ]
    with settled_heap():
        await stop.wait()
    if listener is not None:
        await listener.stop()
    calendar.stop()
    retention.stop()
    timers.stop()
    sealer.stop()
    await relay.stop()
    await asyncio.gather(*tasks)
    await http.aclose()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
