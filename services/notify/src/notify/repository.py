"""All of notify's SQL. Hot paths (event fan-out, delivery worker) are Core statements."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from govshared import jurisdictions
from govshared.events import CloudEvent
from govshared.outbox import OutboxWriter
from govshared.sql import dialect_name, insert_ignore
from notify.db import idempotency_keys
from notify.models import (
    Delivery,
    DeliveryStatus,
    DeliveryStatusChange,
    InboxMessage,
    InboxStreamCounter,
    RecipientProfile,
    Template,
    WebhookSubscription,
)
from notify.rules import Readers

inbox_messages = cast(Table, InboxMessage.__table__)
stream_counter = cast(Table, InboxStreamCounter.__table__)
deliveries = cast(Table, Delivery.__table__)
status_history = cast(Table, DeliveryStatusChange.__table__)
profiles = cast(Table, RecipientProfile.__table__)
webhooks = cast(Table, WebhookSubscription.__table__)
templates = cast(Table, Template.__table__)

InboxKey = tuple[bool, datetime, uuid.UUID]
DUE_PREDICATE = "deliveries.status IN ('queued', 'failed')"


class InboxRepository:
    """In-app messages."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert messages (one executemany), numbered with the next stream positions.

        The positions come from the counter row, whose lock this transaction now holds until it
        commits: another transaction inserting messages waits here, so positions are given in
        commit order and a reader never sees a position before an earlier one has committed (on
        SQLite the one writer at a time does the same). Call it as the transaction's last write:
        every statement after it lengthens that wait for every other intake.
        """
        if not rows:
            return
        counter = stream_counter.c
        last = (
            await self.session.execute(
                update(stream_counter)
                .where(counter.id == 1)
                .values(value=counter.value + len(rows))
                .returning(counter.value)
            )
        ).scalar_one()
        first = last - len(rows) + 1
        numbered = [{**row, "stream_seq": first + i} for i, row in enumerate(rows)]
        await self.session.execute(insert(inbox_messages), numbered)

    async def list_for(
        self, recipients: Readers, *, limit: int, after: InboxKey | None
    ) -> list[InboxMessage]:
        """Unread first, then newest (keyset on is_read, created_at desc, id desc)."""
        query = select(InboxMessage).where(recipients.clause(InboxMessage.recipient))
        if after is not None:
            is_read, created_at, ident = after
            older = tuple_(InboxMessage.created_at, InboxMessage.id) < (created_at, ident)
            if is_read:
                query = query.where(InboxMessage.is_read.is_(True), older)
            else:
                # Past an unread row: older unread ones, then every read one.
                query = query.where(
                    or_(
                        InboxMessage.is_read.is_(True), and_(InboxMessage.is_read.is_(False), older)
                    )
                )
        query = query.order_by(
            InboxMessage.is_read, InboxMessage.created_at.desc(), InboxMessage.id.desc()
        ).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def get_for(self, message_id: uuid.UUID, recipients: Readers) -> InboxMessage | None:
        """One message, only if addressed to one of ``recipients``."""
        query = select(InboxMessage).where(
            InboxMessage.id == message_id, recipients.clause(InboxMessage.recipient)
        )
        return (await self.session.scalars(query)).one_or_none()

    async def mark_read(self, message: InboxMessage, at: datetime) -> None:
        """Mark a message read (first read time kept)."""
        if not message.is_read:
            message.is_read = True
            message.read_at = at
            await self.session.flush()

    async def unread_count(self, recipients: Readers) -> int:
        """Unread messages of the recipients."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(inbox_messages)
            .where(
                recipients.clause(inbox_messages.c.recipient), inbox_messages.c.is_read.is_(False)
            )
        )
        return int(count or 0)

    async def stream_after(
        self, recipients: Readers, position: int, *, limit: int
    ) -> list[InboxMessage]:
        """The recipients' messages past a stream position, in position order (the SSE stream;
        ``ix_inbox_messages_stream``)."""
        query = (
            select(InboxMessage)
            .where(recipients.clause(InboxMessage.recipient), InboxMessage.stream_seq > position)
            .order_by(InboxMessage.stream_seq)
            .limit(limit)
        )
        return list((await self.session.scalars(query)).all())

    async def stream_head(self) -> int:
        """The last stream position committed (every message committed so far is at or before
        it, every one committing later after it)."""
        value = await self.session.scalar(
            select(stream_counter.c.value).where(stream_counter.c.id == 1)
        )
        return int(value or 0)

    async def stream_position_of(self, recipients: Readers, message_id: uuid.UUID) -> int | None:
        """The stream position of one of the recipients' messages (None: no such message)."""
        return await self.session.scalar(
            select(inbox_messages.c.stream_seq).where(
                inbox_messages.c.id == message_id, recipients.clause(inbox_messages.c.recipient)
            )
        )

    async def first_stream_position_since(self, recipients: Readers, since: datetime) -> int | None:
        """The lowest stream position among the recipients' messages created at or after a time."""
        return await self.session.scalar(
            select(func.min(inbox_messages.c.stream_seq)).where(
                recipients.clause(inbox_messages.c.recipient),
                inbox_messages.c.created_at >= since,
            )
        )


class DeliveryRepository:
    """Deliveries and their status history."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new deliveries (one executemany; the unique constraint guards exactly-once)."""
        if rows:
            await self.session.execute(insert(deliveries), list(rows))

    async def insert_if_new(self, row: dict[str, Any]) -> bool:
        """Insert unless the (event, recipient, channel, target) already has a delivery."""
        result = await self.session.execute(
            insert_ignore(
                self.session,
                deliveries,
                index_elements=["event_id", "recipient", "channel", "target"],
            ).values(**row)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def append_history(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append status changes (one executemany)."""
        if rows:
            await self.session.execute(insert(status_history), list(rows))

    async def claim_due(self, *, now: datetime, limit: int) -> list[Any]:
        """Due deliveries, locked against other workers (SKIP LOCKED on PostgreSQL).

        The literal predicate matches the partial index ``ix_deliveries_due`` (a bound parameter
        would keep PostgreSQL's generic plans from using it). Rows a dead worker left ``sending``
        are taken back once their lease has run out.
        """
        d = deliveries
        postgres = dialect_name(self.session) == "postgresql"
        due = (
            select(d)
            .where(text(DUE_PREDICATE), d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at)
            .limit(limit)
        )
        if postgres:
            due = due.with_for_update(skip_locked=True)
        rows = list((await self.session.execute(due)).all())
        if len(rows) < limit:
            stale = (
                select(d)
                .where(d.c.status == DeliveryStatus.SENDING, d.c.claimed_until < now)
                .limit(limit - len(rows))
            )
            if postgres:
                stale = stale.with_for_update(skip_locked=True)
            rows.extend((await self.session.execute(stale)).all())
        return rows

    async def release(
        self, ids: Sequence[uuid.UUID], *, lease: datetime, now: datetime
    ) -> list[uuid.UUID]:
        """Put claimed deliveries back in the queue, only those still under this lease (another
        worker's claim after it ran out is left alone); the ids released."""
        if not ids:
            return []
        d = deliveries
        statement = (
            update(d)
            .where(
                d.c.id.in_(list(ids)),
                d.c.status == DeliveryStatus.SENDING,
                d.c.claimed_until == lease,
            )
            .values(status=DeliveryStatus.QUEUED.value, claimed_until=None, updated_at=now)
            .returning(d.c.id)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def update_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Apply per-row changes: each dict has ``_id`` and the same set of columns."""
        if not rows:
            return
        columns = [k for k in rows[0] if k != "_id"]
        statement = (
            update(deliveries)
            .where(deliveries.c.id == bindparam("_id"))
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
        params = [{"_id": r["_id"], **{f"v_{c}": r[c] for c in columns}} for r in rows]
        await self.session.execute(statement, params)

    async def sent_counts(
        self, pairs: Iterable[tuple[str, str]], *, since: datetime
    ) -> dict[tuple[str, str], int]:
        """Deliveries sent per (recipient, channel) since a time (rate limits)."""
        pairs = list(set(pairs))
        if not pairs:
            return {}
        d = deliveries
        query = (
            select(d.c.recipient, d.c.channel, func.count())
            .where(
                tuple_(d.c.recipient, d.c.channel).in_(pairs),
                d.c.sent_at >= since,
            )
            .group_by(d.c.recipient, d.c.channel)
        )
        return {(r, c): int(n) for r, c, n in (await self.session.execute(query)).all()}

    async def get(self, delivery_id: uuid.UUID) -> Delivery | None:
        """One delivery."""
        return await self.session.get(Delivery, delivery_id)

    async def get_for_update(self, delivery_id: uuid.UUID) -> Delivery | None:
        """One delivery, locked on PostgreSQL."""
        query = select(Delivery).where(Delivery.id == delivery_id)
        if dialect_name(self.session) == "postgresql":
            query = query.with_for_update()
        return (await self.session.scalars(query)).one_or_none()

    async def by_provider_id(self, message_id: str) -> Delivery | None:
        """The SMS delivery a provider's message id belongs to."""
        query = select(Delivery).where(Delivery.provider_message_id == message_id)
        if dialect_name(self.session) == "postgresql":
            query = query.with_for_update()
        return (await self.session.scalars(query)).first()

    async def history(self, delivery_id: uuid.UUID) -> list[DeliveryStatusChange]:
        """The status history, oldest first."""
        query = (
            select(DeliveryStatusChange)
            .where(DeliveryStatusChange.delivery_id == delivery_id)
            .order_by(DeliveryStatusChange.id)
        )
        return list((await self.session.scalars(query)).all())

    async def list_by_status(
        self,
        status: DeliveryStatus,
        *,
        jurisdiction: str | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[Delivery]:
        """Deliveries in a state, newest change first (keyset on updated_at, id)."""
        query = select(Delivery).where(Delivery.status == status)
        if jurisdiction is not None:
            query = query.where(jurisdictions.in_scope(Delivery.jurisdiction, jurisdiction))
        if after is not None:
            query = query.where(tuple_(Delivery.updated_at, Delivery.id) < after)
        query = query.order_by(Delivery.updated_at.desc(), Delivery.id.desc()).limit(limit)
        return list((await self.session.scalars(query)).all())


class ProfileRepository:
    """Recipients' contacts, preferences and quiet hours."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_many(self, recipients: Iterable[str]) -> dict[str, Any]:
        """Profiles by recipient (Core rows)."""
        keys = list(set(recipients))
        if not keys:
            return {}
        rows = await self.session.execute(select(profiles).where(profiles.c.recipient.in_(keys)))
        return {row.recipient: row for row in rows}

    async def get(self, recipient: str) -> RecipientProfile | None:
        """One profile."""
        return await self.session.get(RecipientProfile, recipient)

    async def save(self, profile: RecipientProfile) -> None:
        """Insert or update a profile."""
        await self.session.merge(profile)


class WebhookRepository:
    """Enterprises' webhook subscriptions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_for_owners(self, owners: Iterable[str]) -> dict[str, list[Any]]:
        """Active subscriptions by owner (Core rows)."""
        keys = list(set(owners))
        if not keys:
            return {}
        rows = await self.session.execute(
            select(webhooks.c.id, webhooks.c.owner, webhooks.c.url, webhooks.c.event_types).where(
                webhooks.c.owner.in_(keys), webhooks.c.active.is_(True)
            )
        )
        result: dict[str, list[Any]] = {}
        for row in rows:
            result.setdefault(row.owner, []).append(row)
        return result

    async def secrets(
        self, ids: Iterable[uuid.UUID], *, now: datetime
    ) -> dict[uuid.UUID, list[str]]:
        """Signing secrets by subscription: the current one, and the previous during rotation."""
        keys = list(set(ids))
        if not keys:
            return {}
        rows = await self.session.execute(
            select(
                webhooks.c.id,
                webhooks.c.secret,
                webhooks.c.previous_secret,
                webhooks.c.previous_secret_expires_at,
            ).where(webhooks.c.id.in_(keys))
        )
        result: dict[uuid.UUID, list[str]] = {}
        for row in rows:
            secrets = [row.secret]
            if (
                row.previous_secret
                and row.previous_secret_expires_at
                and (row.previous_secret_expires_at > now)
            ):
                secrets.append(row.previous_secret)
            result[row.id] = secrets
        return result

    async def list_for(self, owner: str) -> list[WebhookSubscription]:
        """An owner's subscriptions, oldest first."""
        query = (
            select(WebhookSubscription)
            .where(WebhookSubscription.owner == owner)
            .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
        )
        return list((await self.session.scalars(query)).all())

    async def count_for(self, owner: str) -> int:
        """How many subscriptions an owner has."""
        count = await self.session.scalar(
            select(func.count()).select_from(webhooks).where(webhooks.c.owner == owner)
        )
        return int(count or 0)

    async def get_for(self, webhook_id: uuid.UUID, owner: str) -> WebhookSubscription | None:
        """One subscription, only if ``owner`` owns it."""
        query = select(WebhookSubscription).where(
            WebhookSubscription.id == webhook_id, WebhookSubscription.owner == owner
        )
        return (await self.session.scalars(query)).one_or_none()

    async def add(self, subscription: WebhookSubscription) -> None:
        """Insert a subscription."""
        self.session.add(subscription)
        await self.session.flush()

    async def delete(self, subscription: WebhookSubscription) -> None:
        """Remove a subscription."""
        await self.session.delete(subscription)
        await self.session.flush()


class TemplateRepository:
    """Admin-published template versions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def latest(self) -> dict[tuple[str, str], Any]:
        """The newest published version of each (event type, channel) (Core rows)."""
        t = templates
        newest = (
            select(t.c.event_type, t.c.channel, func.max(t.c.version).label("version"))
            .group_by(t.c.event_type, t.c.channel)
            .subquery()
        )
        query = select(t).join(
            newest,
            and_(
                t.c.event_type == newest.c.event_type,
                t.c.channel == newest.c.channel,
                t.c.version == newest.c.version,
            ),
        )
        return {(r.event_type, r.channel): r for r in (await self.session.execute(query))}

    async def versions(self, event_type: str | None) -> list[Template]:
        """Published versions, by event type, channel and version."""
        query = select(Template)
        if event_type is not None:
            query = query.where(Template.event_type == event_type)
        query = query.order_by(Template.event_type, Template.channel, Template.version)
        return list((await self.session.scalars(query)).all())

    async def max_version(self, event_type: str, channel: str) -> int | None:
        """The highest published version of a template."""
        return await self.session.scalar(
            select(func.max(templates.c.version)).where(
                templates.c.event_type == event_type, templates.c.channel == channel
            )
        )

    async def add(self, template: Template) -> None:
        """Insert a version."""
        self.session.add(template)
        await self.session.flush()


class EventLogRepository:
    """Bulk forms of the shared inbox and outbox for the hot path (docs/performance.md).

    ``govshared.inbox.record_event_once`` and ``OutboxWriter.add`` take one event per statement; a
    relay's batch of 100 would cost 200 round trips. These write the same rows, with the same
    conflict rule, in one statement each.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_events_once(
        self, table: Table, *, consumer: str, events: Sequence[tuple[str, str]], at: datetime
    ) -> set[str]:
        """Record (event id, type) pairs; the ids recorded now (the rest were seen before)."""
        if not events:
            return set()
        statement = (
            insert_ignore(self.session, table, index_elements=["consumer", "event_id"])
            .values(
                [
                    {"consumer": consumer, "event_id": i, "event_type": t, "received_at": at}
                    for i, t in events
                ]
            )
            .returning(table.c.event_id)
        )
        return set((await self.session.execute(statement)).scalars().all())

    async def add_to_outbox(
        self, table: Table, writer: OutboxWriter, events: Sequence[CloudEvent], *, at: datetime
    ) -> int:
        """Insert the events for their subscribed destinations (one executemany); rows written."""
        rows = [
            {
                "id": f"{event.id}:{destination}",
                "event_id": event.id,
                "event_type": event.type,
                "destination": destination,
                "payload": event.model_dump_json(),
                "created_at": at,
                "available_at": at,
                "attempts": 0,
            }
            for event in events
            for destination in writer.destinations(event.type)
        ]
        if rows:
            await self.session.execute(insert(table), rows)
        return len(rows)


class IdempotencyRepository:
    """The response stored with an Idempotency-Key, completed once the effect is known."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def store_response(self, *, owner: str, key: str, body: str) -> None:
        """Replace the provisional response recorded when the key was claimed."""
        await self.session.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.owner == owner, idempotency_keys.c.key == key)
            .values(response_body=body)
        )
