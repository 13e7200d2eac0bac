"""The inbox: each reader's messages (an enterprise its own, staff their jurisdiction's and
role's), read marks, and the stream of new messages as they commit."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.auth import Principal, Role
from govshared.pagination import decode_keyset, encode_cursor
from notify.delivery import utcnow
from notify.errors import MessageNotFound
from notify.models import InboxMessage
from notify.repository import InboxKey, InboxRepository
from notify.rules import Readers, department_recipient, staff_recipient, user_recipient


def recipients_of(principal: Principal) -> Readers:
    """The inboxes a caller reads: its USCC; or itself, and its role's in its jurisdiction and
    every one under it (a city's staff see what went to a district's)."""
    if principal.role is Role.ENTERPRISE:
        assert principal.uscc is not None
        return Readers((principal.uscc,))
    keys: tuple[str, ...] = (
        staff_recipient(principal.jurisdiction or "*", principal.role),
        user_recipient(principal.subject),
    )
    if principal.department is not None:  # a consulted department's requests (并联审批)
        keys += (department_recipient(principal.department),)
    if principal.jurisdiction is None:
        return Readers(keys)
    return Readers(keys, principal.role.value, principal.jurisdiction)


class InboxSignal:
    """Wakes this process's SSE streams when it commits new messages (other replicas poll)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, _session: AsyncSession | None = None) -> None:
        """Wake every waiting stream."""
        self._event.set()
        self._event = asyncio.Event()

    def mark(self) -> asyncio.Event:
        """The next wake-up, taken before a stream reads: a commit during the read sets it, and
        the wait after the read (``wait(..., mark)``) then returns at once instead of missing it."""
        return self._event

    async def wait(self, seconds: float, mark: asyncio.Event | None = None) -> None:
        """Wait for a wake-up (the one ``mark`` took, or the next), at most ``seconds``."""
        event = self._event if mark is None else mark
        if event.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=seconds)


class InboxService:
    """A reader's messages, bound to one transaction's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.inbox = InboxRepository(session)

    async def list_inbox(
        self, *, principal: Principal, limit: int, after: InboxKey | None
    ) -> list[InboxMessage]:
        """The caller's messages, unread first, then newest."""
        return await self.inbox.list_for(recipients_of(principal), limit=limit, after=after)

    async def get_message(self, *, principal: Principal, message_id: uuid.UUID) -> InboxMessage:
        """One of the caller's messages (404 for anyone else's, never its content)."""
        message = await self.inbox.get_for(message_id, recipients_of(principal))
        if message is None:
            raise MessageNotFound()
        return message

    async def mark_read(self, *, principal: Principal, message_id: uuid.UUID) -> InboxMessage:
        """Mark one of the caller's messages read."""
        message = await self.get_message(principal=principal, message_id=message_id)
        await self.inbox.mark_read(message, utcnow())
        return message

    async def unread_count(self, *, principal: Principal) -> int:
        """How many of the caller's messages are unread."""
        return await self.inbox.unread_count(recipients_of(principal))


STREAM_PAGE = 200  # messages read at once by the SSE stream
# How far before its time a stream starts that has no position of its own: a new connection (the
# portal lists /inbox, then connects: what arrived in between is sent rather than missed) and a
# Last-Event-ID of the streams before ``stream_seq``, whose message is not the caller's.
STREAM_LOOKBACK = timedelta(seconds=10)

StreamStart = tuple[datetime, uuid.UUID] | None
"""Where a stream starts: past the message a Last-Event-ID names by its (created_at, id), or
(None) at the messages of the last ``STREAM_LOOKBACK``."""


def stream_event_id(created_at: datetime, ident: uuid.UUID) -> str:
    """The SSE ``id:`` of a message: its (created_at, id), opaque to the client. A reconnect resumes
    at that message's stream position (``stream_start``).

    Not the position itself: during a roll-out or a roll-back a browser may reconnect to a pod of
    the other version, which must understand the id (the version before positions reads only this
    form), and a position would tell every reader how many messages the whole system has sent.
    """
    return encode_cursor([created_at.isoformat(), str(ident)])


def parse_stream_event_id(value: str) -> tuple[datetime, uuid.UUID]:
    """A Last-Event-ID: the (created_at, id) of a message the stream sent; else a 400
    ``invalid_cursor``."""
    at, ident = decode_keyset(value, datetime, uuid.UUID)
    return at, ident


async def stream_start(repository: InboxRepository, recipients: Readers, since: StreamStart) -> int:
    """The position a stream sends the messages after.

    A Last-Event-ID of the caller's message resumes at that message's position (messages from
    before positions were numbered in (created_at, id) order, the old stream's order). Otherwise,
    a Last-Event-ID naming no message of the caller's or none at all, the stream
    starts before the first of the caller's messages stamped within ``STREAM_LOOKBACK`` of the time,
    as the old look-back window did: a message sent twice rather than one lost. There the head is
    read before the first position: whatever commits after that read is past it, whatever the
    second query sees.
    """
    if since is not None:
        position = await repository.stream_position_of(recipients, since[1])
        if position is not None:
            return position
    head = await repository.stream_head()
    at = utcnow() if since is None else since[0]
    first = await repository.first_stream_position_since(recipients, at - STREAM_LOOKBACK)
    return head if first is None else min(head, first - 1)


async def inbox_updates(
    sessionmaker: async_sessionmaker[AsyncSession],
    signal: InboxSignal,
    *,
    recipients: Readers,
    since: StreamStart,
    poll_seconds: float,
    max_seconds: float,
    is_disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[InboxMessage]:
    """New messages of the recipients, in the order they commit, until ``max_seconds`` have passed.

    Each poll reads the messages past the last position sent. Positions are given in commit order
    (``InboxRepository.insert_many``), so a message that commits after a read is always past it.
    ``created_at`` could not promise that: it is stamped before commit, and a message stamped before
    one already sent but committed after the read was skipped by a stream resumed past that time.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    async with sessionmaker() as session:
        position = await stream_start(InboxRepository(session), recipients, since)
    while True:
        # Taken before the read: a message committed while it runs wakes the wait below at once.
        wake = signal.mark()
        # Page by position: a poll may find more than a page (a busy jurisdiction's staff inbox).
        while True:
            async with sessionmaker() as session:
                rows = await InboxRepository(session).stream_after(
                    recipients, position, limit=STREAM_PAGE
                )
            for message in rows:
                position = message.stream_seq
                yield message
            if len(rows) < STREAM_PAGE:
                break
        remaining = deadline - loop.time()
        if remaining <= 0 or await is_disconnected():
            return
        await signal.wait(min(poll_seconds, remaining), wake)
