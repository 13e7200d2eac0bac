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

    async def wait(self, seconds: float) -> None:
        """Wait for a wake-up, at most ``seconds``."""
        event = self._event
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


async def inbox_updates(
    sessionmaker: async_sessionmaker[AsyncSession],
    signal: InboxSignal,
    *,
    recipients: Readers,
    since: tuple[datetime, uuid.UUID] | None,
    poll_seconds: float,
    max_seconds: float,
    is_disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[InboxMessage]:
    """New messages of the recipients, as they commit, until ``max_seconds`` have passed.

    Each poll reads a few seconds back from the newest message seen, because a transaction that
    began earlier can commit a message stamped before one already sent; ids seen are skipped.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    cursor = since[0] if since is not None else utcnow()
    lookback = timedelta(seconds=10)
    seen: dict[uuid.UUID, datetime] = {}
    while True:
        # Page through the window: more than a page of messages inside the look-back (a staff
        # inbox of a busy jurisdiction) would otherwise be read as the same first page, all seen,
        # on every poll, and the stream would stall there.
        page_after: tuple[datetime, uuid.UUID] | None = None
        window = cursor - lookback
        while True:
            async with sessionmaker() as session:
                rows = await InboxRepository(session).created_since(
                    recipients, window, limit=STREAM_PAGE, after=page_after
                )
            for message in rows:
                if message.id in seen or (
                    since is not None and (message.created_at, message.id) <= since
                ):
                    continue
                seen[message.id] = message.created_at
                cursor = max(cursor, message.created_at)
                yield message
            if len(rows) < STREAM_PAGE:
                break
            page_after = (rows[-1].created_at, rows[-1].id)
        horizon = cursor - lookback
        for ident in [i for i, at in seen.items() if at < horizon]:
            del seen[ident]
        remaining = deadline - loop.time()
        if remaining <= 0 or await is_disconnected():
            return
        await signal.wait(min(poll_seconds, remaining))
