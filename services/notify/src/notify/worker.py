"""Background work of notify: the delivery worker and the outbox relay (proof of service).

Runs inside the web process in the embedded default, or alone with ``python -m notify.worker``
(the same image in worker mode), so that production scales web and workers apart. Deliveries are
claimed from the database (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) under a lease, so any number of
workers share the work and a crashed one's claims are picked up after the lease.

A lease taken back must never mean a notice sent twice. So every attempt has a deadline well inside
the lease (``Settings.attempt_seconds``: a receiver that drips its answer is cut off and the
attempt failed), an attempt starts only while its deadline and a reserve for recording its result
remain of the lease (otherwise the delivery goes back to the queue unsent), and each result is
recorded as soon as it is known, not when the whole batch is done. Each channel has its own lanes,
so a slow SMTP server or webhook receiver holds up only its own channel.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.app import settled_heap
from govshared.auth import ServiceTokenSource, service_tokens
from govshared.db import engine_from_settings, make_sessionmaker
from govshared.loops import BackgroundLoop
from govshared.observability import configure_logging, make_http_client, serve_worker_metrics
from govshared.outbox import Destination, OutboxRelay, OutboxWriter
from govshared.retention import plumbing_retention
from govshared.sql import use_driver
from govshared.wake import DELIVERY_CHANNEL, OUTBOX_CHANNEL, wake_listener
from notify.channels.base import (
    Attachment,
    ChannelError,
    ChannelSender,
    OutboundMessage,
    SendOutcome,
)
from notify.channels.email import FileEmailSender, SmtpEmailSender
from notify.channels.sms import HttpSmsProvider, SmsSender
from notify.channels.webhook import WebhookSender
from notify.config import Settings
from notify.contacts import CONTACT_FIELDS, SEND_AS_IS, Contact, contact_now
from notify.db import metadata, outbox_events
from notify.delivery import (
    Attempt,
    ProofOfService,
    Transitions,
    quiet_until,
    utcnow,
)
from notify.documents import AttachmentSpec, DocumentFetcher, DocumentLinks, attachment_of
from notify.models import Channel, DeliveryStatus
from notify.repository import DeliveryRepository, ProfileRepository, WebhookRepository
from notify.results import ResultRecorder
from notify.webhook_body import webhook_ready

logger = logging.getLogger("notify.worker")

DELIVERY_ATTEMPTS = Counter(
    "notify_delivery_attempts_total", "Delivery attempts", ["channel", "result"]
)

# Attempts one worker runs at once per channel besides email (as many as SMTP connections): within
# the HTTP clients' pools (100 connections; SMS shares the service's client with the relay and the
# document downloads), so that no attempt spends its deadline waiting for a connection.
LANES: dict[Channel, int] = {Channel.WEBHOOK: 50, Channel.SMS: 20}
# The share of the lease kept, after an attempt's deadline, for recording its result.
RECORD_RESERVE = 0.25

# Notify's own events go back to the service whose event caused the notice.
PROOF_SUBSCRIPTIONS: dict[str, dict[str, list[str]]] = {
    "cn.gov.approval.": {"approval": ["cn.gov.notify.*"]},
    "cn.gov.license.": {"license": ["cn.gov.notify.*"]},
}


def build_proof(writers: Mapping[str, OutboxWriter] | None = None) -> ProofOfService:
    """Proof of service through notify's outbox (one writer per destination)."""
    if writers is None:
        writers = {
            prefix: OutboxWriter(outbox_events, subscriptions)
            for prefix, subscriptions in PROOF_SUBSCRIPTIONS.items()
        }
    return ProofOfService(dict(writers))


def build_relay(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    tokens: ServiceTokenSource,
) -> OutboxRelay:
    """The relay that posts notify's events to approval and license."""
    return OutboxRelay(
        sessionmaker=sessionmaker,
        table=outbox_events,
        destinations={
            "approval": Destination(settings.approval_events_url, tokens.for_service("approval")),
            "license": Destination(settings.license_events_url, tokens.for_service("license")),
        },
        http=http,
        poll_interval=settings.relay_poll_seconds,
        lease_seconds=settings.relay_lease_seconds,
        probe_max_seconds=settings.relay_probe_max_seconds,
    )


def build_senders(settings: Settings, *, http: httpx.AsyncClient) -> dict[Channel, ChannelSender]:
    """The outbound channels the settings configure."""
    senders: dict[Channel, ChannelSender] = {
        Channel.WEBHOOK: WebhookSender(
            settings.egress_policy(), timeout=settings.http_timeout_seconds
        )
    }
    if settings.smtp_host:
        senders[Channel.EMAIL] = SmtpEmailSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            use_tls=settings.smtp_tls,
            connections=settings.smtp_connections,
            timeout=settings.http_timeout_seconds,
        )
    else:
        senders[Channel.EMAIL] = FileEmailSender(
            settings.data_dir / "mail", sender=settings.mail_from
        )
    if settings.sms_gateway_url:
        api_key = settings.sms_api_key.get_secret_value() if settings.sms_api_key else None
        senders[Channel.SMS] = SmsSender(
            HttpSmsProvider(
                base_url=settings.sms_gateway_url,
                api_key=api_key,
                sign_name=settings.sms_sign_name,
                http=http,
            )
        )
    return senders


def build_documents(
    settings: Settings, *, http: httpx.AsyncClient, tokens: ServiceTokenSource
) -> DocumentFetcher:
    """Fetches sealed PDFs from approval and license for email attachments."""
    return DocumentFetcher(DocumentLinks.from_settings(settings), http=http, tokens=tokens)


class DeliveryWorker:
    """Claims due deliveries, holds back what quiet hours or rate limits forbid, sends the rest."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        senders: Mapping[Channel, ChannelSender],
        proof: ProofOfService,
        documents: DocumentFetcher | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._senders = dict(senders)
        self._proof = proof
        self._documents = documents
        self._loop = BackgroundLoop(
            self._pass,
            what="delivery worker iteration",
            poll_seconds=settings.delivery_poll_seconds,
            log=logger,
        )
        self._rate_limits = {
            Channel.SMS: settings.rate_limit_sms_per_hour,
            Channel.EMAIL: settings.rate_limit_email_per_hour,
            Channel.WEBHOOK: settings.rate_limit_webhook_per_hour,
        }

    def wake(self, _session: AsyncSession | None = None) -> None:
        """Deliver now instead of at the next poll."""
        self._loop.wake()

    async def _hold_back(
        self, session: AsyncSession, rows: list[Any], now: Any, profiles: Mapping[str, Any]
    ) -> tuple[list[Any], list[tuple[Any, Any, str]]]:
        """Split claimed rows into those to send and those to defer (with until when and why)."""
        ordinary = [r for r in rows if not r.critical]
        if not ordinary:
            return rows, []
        counts = await DeliveryRepository(session).sent_counts(
            ((r.recipient, r.channel) for r in ordinary if r.channel in self._rate_limits),
            since=now - timedelta(hours=1),
        )
        admitted: list[Any] = []
        deferred: list[tuple[Any, Any, str]] = []
        for row in rows:
            if row.critical:
                admitted.append(row)
                continue
            if row.channel == Channel.SMS:
                until = quiet_until(profiles.get(row.recipient), now)
                if until is not None:
                    deferred.append((row, until, f"免打扰时段，推迟至 {until.isoformat()}"))
                    continue
            limit = self._rate_limits.get(Channel(row.channel))
            if limit is not None:
                key = (row.recipient, row.channel)
                if counts.get(key, 0) >= limit:
                    until = now + timedelta(seconds=max(60.0, 3600.0 / max(limit, 1)))
                    deferred.append((row, until, f"超出每小时 {limit} 条的频率限制"))
                    continue
                counts[key] = counts.get(key, 0) + 1
            admitted.append(row)
        return admitted, deferred

    async def _claim(self) -> _Claim:
        """Claim due rows: those to send now (``sending`` until the lease), their webhooks'
        secrets, their recipients' contacts as they stand now, and the lease."""
        now = utcnow()
        lease = now + timedelta(seconds=self._settings.delivery_lease_seconds)
        async with self._sessionmaker() as session, session.begin():
            repo = DeliveryRepository(session)
            rows = await repo.claim_due(now=now, limit=self._settings.delivery_batch_size)
            if not rows:
                return _Claim([], {}, {}, lease)
            profiles = await ProfileRepository(session).get_many(
                r.recipient for r in rows if r.channel in CONTACT_FIELDS
            )
            contacts = {
                r.id: contact_now(r, profiles.get(r.recipient))
                for r in rows
                if r.channel in CONTACT_FIELDS
            }
            # A notice that may no longer go out is neither held back nor counted: its attempt
            # fails at once, without a network call, and is recorded as any other.
            refused = {i for i, contact in contacts.items() if contact.refusal is not None}
            held, deferred = await self._hold_back(
                session, [r for r in rows if r.id not in refused], now, profiles
            )
            admitted = [r for r in rows if r.id in refused] + held

            def address(row: Any) -> str | None:
                return contacts.get(row.id, SEND_AS_IS).address or row.address

            changes = [
                {
                    "_id": r.id,
                    "status": DeliveryStatus.SENDING.value,
                    "claimed_until": lease,
                    "next_attempt_at": r.next_attempt_at,
                    "updated_at": now,
                    "address": address(r),
                }
                for r in admitted
            ] + [
                {
                    "_id": r.id,
                    "status": DeliveryStatus.QUEUED.value,
                    "claimed_until": None,
                    "next_attempt_at": until,
                    "updated_at": now,
                    "address": address(r),
                }
                for r, until, _ in deferred
            ]
            await repo.update_many(changes)
            await repo.append_history(
                [
                    {
                        "delivery_id": r.id,
                        "status": DeliveryStatus.SENDING.value,
                        "detail": None,
                        "at": now,
                    }
                    for r in admitted
                ]
                + [
                    {
                        "delivery_id": r.id,
                        "status": DeliveryStatus.QUEUED.value,
                        "detail": why,
                        "at": now,
                    }
                    for r, _, why in deferred
                ]
            )
            secrets = await WebhookRepository(session).secrets(
                (
                    uuid.UUID(r.target)
                    for r in admitted
                    if r.channel == Channel.WEBHOOK and r.target
                ),
                now=now,
            )
        return _Claim(
            admitted,
            {str(k): v for k, v in secrets.items()},
            {r.id: contacts[r.id] for r in admitted if r.id in contacts},
            lease,
        )

    async def _attempt(self, row: Any, claim: _Claim, deadline: float) -> Attempt:
        """One attempt, cut off at ``deadline`` seconds (a failed attempt, retried)."""
        tried = row.attempts + 1
        sender = self._senders.get(Channel(row.channel))
        timer = asyncio.timeout(deadline)
        contact = claim.contacts.get(row.id, SEND_AS_IS)
        address = contact.address or row.address
        try:
            if contact.refusal is not None:
                raise ChannelError(contact.refusal, permanent=True)
            if sender is None:
                raise ChannelError(f"channel {row.channel} is not configured", permanent=True)
            if row.body is None or not address:
                raise ChannelError("nothing to send to this address", permanent=True)
            if row.channel == Channel.WEBHOOK and not webhook_ready(row.payload):
                # Never an empty notice that the receiver's 2xx would turn into proof of service.
                raise ChannelError("回调内容缺失（通知未渲染），未发送", permanent=True)
            spec = attachment_of(row.event_source, row.context or {})
            message = OutboundMessage(
                delivery_id=row.id,
                channel=Channel(row.channel),
                address=address,
                title=row.title,
                body=row.body,
                payload=dict(row.payload or {}),
                attempt=tried,
                secrets=tuple(claim.secrets.get(row.target, ())),
            )
            outcome: SendOutcome
            async with timer:
                if row.channel != Channel.EMAIL or spec is None:
                    outcome = await sender.send(message)
                else:
                    # The PDF is fetched within the email's deadline, in its lane: no more PDFs
                    # are held at once than emails can be sent at once.
                    attachment = await self._fetch(spec)
                    outcome = await sender.send(replace(message, attachments=(attachment,)))
        except ChannelError as exc:
            DELIVERY_ATTEMPTS.labels(row.channel, "failed").inc()
            return Attempt(row, None, exc, tried)
        except TimeoutError as exc:
            if not timer.expired():
                return self._unexpected(row, exc, tried)
            DELIVERY_ATTEMPTS.labels(row.channel, "timeout").inc()
            error = ChannelError(f"发送超时：{deadline:g} 秒内未完成")
            return Attempt(row, None, error, tried)
        except Exception as exc:
            return self._unexpected(row, exc, tried)
        DELIVERY_ATTEMPTS.labels(row.channel, outcome.status.value).inc()
        return Attempt(row, outcome, None, tried)

    @staticmethod
    def _unexpected(row: Any, exc: Exception, tried: int) -> Attempt:
        # A sender bug must not kill the worker or leave the row claimed until the lease ends.
        logger.exception("sender failed unexpectedly", extra={"channel": row.channel})
        DELIVERY_ATTEMPTS.labels(row.channel, "error").inc()
        return Attempt(row, None, ChannelError(f"{type(exc).__name__}: {exc}"), tried)

    async def _fetch(self, spec: AttachmentSpec) -> Attachment:
        """The sealed PDF an email announces, fetched and checked now (``ChannelError`` if not)."""
        if self._documents is None:
            raise ChannelError("this worker cannot fetch documents")
        return await self._documents.fetch(spec)

    def _lanes(self, channel: Channel) -> int:
        if channel is Channel.EMAIL:
            return self._settings.smtp_connections
        return LANES.get(channel, 1)

    async def _record(self, attempts: list[Attempt]) -> None:
        """Record results in one transaction (retries, dead letters, fallbacks, proofs)."""
        async with self._sessionmaker() as session, session.begin():
            transitions = Transitions(session, settings=self._settings, proof=self._proof)
            proofs = await transitions.apply(attempts, now=utcnow())
        if proofs and self._proof.wake is not None:
            self._proof.wake()

    async def _release(self, rows: list[Any], lease: Any) -> None:
        """Put claimed rows back in the queue unsent (no attempt counted), if still ours."""
        now = utcnow()
        async with self._sessionmaker() as session, session.begin():
            repo = DeliveryRepository(session)
            released = await repo.release([r.id for r in rows], lease=lease, now=now)
            await repo.append_history(
                [
                    {
                        "delivery_id": ident,
                        "status": DeliveryStatus.QUEUED.value,
                        "detail": "租约剩余时间不足以完成发送，未发送，重新排队",
                        "at": now,
                    }
                    for ident in released
                ]
            )
        if released:
            logger.info("deliveries released unsent", extra={"count": len(released)})

    async def run_once(self) -> int:
        """Claim one batch and attempt what the lease leaves time for; the number attempted.

        Every channel's rows go through that channel's lanes. An attempt starts only while the
        lease has its deadline and the recording reserve left; once that is no longer so, the
        channel's remaining rows go back to the queue unsent, for the next claim (this worker's
        or another's). Each result is recorded as soon as it is known.
        """
        loop = asyncio.get_running_loop()
        # Taken before the claim: the lease stored in the database ends no earlier than this.
        lease_ends = loop.time() + self._settings.delivery_lease_seconds
        claim = await self._claim()
        rows, lease = claim.rows, claim.lease
        if not rows:
            return 0
        reserve = RECORD_RESERVE * self._settings.delivery_lease_seconds
        results = ResultRecorder(self._record, until=lease_ends)
        queues: dict[Channel, deque[Any]] = {}
        for row in rows:
            queues.setdefault(Channel(row.channel), deque()).append(row)
        attempted = 0

        async def lane(channel: Channel, queue: deque[Any]) -> None:
            nonlocal attempted
            deadline = self._settings.attempt_seconds(channel)
            while queue:
                if lease_ends - loop.time() < deadline + reserve:
                    unsent = list(queue)
                    queue.clear()
                    await self._release(unsent, lease)
                    return
                row = queue.popleft()
                attempted += 1
                results.add(await self._attempt(row, claim, deadline))

        outcomes = await asyncio.gather(
            *(
                lane(channel, queue)
                for channel, queue in queues.items()
                for _ in range(min(self._lanes(channel), len(queue)))
            ),
            return_exceptions=True,
        )
        await results.flush()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return attempted

    async def _pass(self) -> bool:
        return await self.run_once() > 0  # a batch attempted: there may be more due

    async def run(self) -> None:
        """Deliver until stopped; errors are logged and retried (``govshared.loops``), never fatal."""
        await self._loop.run()

    async def stop(self) -> None:
        """Stop after the current batch."""
        self._loop.stop()


@dataclass(frozen=True, slots=True)
class _Claim:
    """A claimed batch: the rows to attempt, their webhooks' secrets, the email and SMS
    addresses in force (``contact_now``) and the lease."""

    rows: list[Any]
    secrets: dict[Any, list[str]]
    contacts: dict[Any, Contact]
    lease: Any


async def main() -> None:
    """Run the delivery worker and the relay until SIGTERM or SIGINT."""
    settings = Settings()
    serve_worker_metrics(host=settings.host, port=settings.worker_metrics_port)
    configure_logging(
        service="notify-worker", level=settings.log_level, json_logs=settings.log_json
    )
    use_driver(settings.sql_on_driver)
    engine = engine_from_settings(settings, pool_size=4)
    sessionmaker = make_sessionmaker(engine)
    http = make_http_client(timeout=settings.http_timeout_seconds)
    tokens = service_tokens(settings, service_name="notify")
    relay = build_relay(settings, sessionmaker=sessionmaker, http=http, tokens=tokens)
    proof = build_proof()
    proof.wake = relay.wake
    senders = build_senders(settings, http=http)
    worker = DeliveryWorker(
        sessionmaker=sessionmaker,
        settings=settings,
        senders=senders,
        proof=proof,
        documents=build_documents(settings, http=http, tokens=tokens),
    )
    # The web processes' commits wake relay and deliveries through PostgreSQL (the poll stays).
    listener = wake_listener(
        settings.database_url, {OUTBOX_CHANNEL: [relay.wake], DELIVERY_CHANNEL: [worker.wake]}
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    retention = plumbing_retention(sessionmaker, metadata)
    tasks = [
        asyncio.create_task(relay.run()),
        asyncio.create_task(worker.run()),
        asyncio.create_task(retention.run()),
    ]
    with settled_heap():
        await stop.wait()
    if listener is not None:
        await listener.stop()
    retention.stop()
    await worker.stop()
    await relay.stop()
    await asyncio.gather(*tasks)
    for sender in senders.values():
        await sender.aclose()
    await http.aclose()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
