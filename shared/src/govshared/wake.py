"""Wake-ups across processes on PostgreSQL: LISTEN/NOTIFY beside the poll.

A worker in its own process (the outbox relay, the sealer, notify's deliveries) waits on its queue
at most its poll interval; a commit in a web process that put work in that queue tells it at once.
``CommitSignal`` sends ``NOTIFY <channel>`` after such a commit, from a connection of its own;
``WakeListener`` holds a dedicated connection that ``LISTEN``s and wakes the worker. The poll stays
as it was: it is what runs while the listening connection is down (it reconnects with backoff and
wakes every worker once it is back, for what was committed meanwhile), and the only mechanism on
SQLite, where the workers run in the web process and its commits wake them directly.

Why not ``pg_notify`` in the writing transaction itself, which would fire exactly at its commit:
PostgreSQL serialises the commits of transactions that notified (a cluster-wide lock on the
notification queue, held until the commit record is flushed), so every submission would wait for
every other one's disk flush. Measured here with pgbench (16 clients, one insert a transaction):
3,900–4,300 commits/s without, 1,240–1,820 with. A NOTIFY on its own writes no WAL and takes the
lock for microseconds. The signal sends at most one NOTIFY per ``min_interval`` (10 ms by default,
``wake_min_interval_seconds``): what is committed in between goes out together in the next one. One
commit at a time, seconds apart, is signalled at once (one round trip after the commit, well under a
millisecond on loopback); under load a web process sends at most a hundred a second, however many
commits it makes. Each NOTIFY costs a round trip of its own (about 65 µs of the machine's CPU here,
PostgreSQL's and the process's together) and wakes every listening worker into a claim query.
Measured under ``make bench-lifecycle`` (about 170 cases a second): 1.4 notifications a case
without the bound, 0.4–0.5 with it. A process that dies between its commit and its NOTIFY leaves
the work to the poll, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from govshared.backoff import backoff_seconds
from govshared.db import is_sqlite

logger = logging.getLogger("govshared.wake")

# The channels (a database's own: NOTIFY does not cross databases).
OUTBOX_CHANNEL = "govshared_outbox"  # outbox rows committed: relays (and approval's sealer)
SEALER_CHANNEL = "govshared_sealer"  # documents registered for the seal
DELIVERY_CHANNEL = "notify_deliveries"  # notify's deliveries queued
INBOX_CHANNEL = "notify_inbox"  # notify's inbox messages committed: every web replica's streams

CONNECT_SECONDS = 5.0


def listen_dsn(database_url: str) -> str | None:
    """asyncpg's DSN for a PostgreSQL URL of the suite's settings; None for SQLite."""
    if is_sqlite(database_url):
        return None
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _identifier(channel: str) -> str:
    if not channel.replace("_", "").isalnum() or not channel.isascii():
        raise ValueError(f"not a plain channel name: {channel!r}")
    return channel


class CommitSignal:
    """Sends ``NOTIFY`` on a channel after a commit that gave its listeners work (coalesced).

    ``hook(channel)`` is an after-commit hook (``govshared.db.after_commit``, the outbox writer's
    ``on_commit``): it only records the channel and returns; a task sends what is recorded, one
    statement at a time on a connection of its own, and no sooner than ``min_interval`` seconds
    after the one before, so the commits made while one NOTIFY is on its way, or within that
    interval of it, go out together in the next. A connection that fails is opened again at the
    next signal; signals lost meanwhile leave the work to the listeners' poll.
    """

    def __init__(self, dsn: str, *, min_interval: float = 0.01) -> None:
        self._dsn = dsn
        self._min_interval = min_interval
        self._pending: set[str] = set()
        self._ready = asyncio.Event()
        self._hooks: dict[str, Callable[[Any], None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None
        self.sent = 0  # NOTIFY statements sent (tests and benchmarks read it)

    def hook(self, channel: str) -> Callable[[Any], None]:
        """The after-commit hook for ``channel`` (the same object each time, so it runs once a
        commit however many rows registered it)."""
        found = self._hooks.get(channel)
        if found is None:
            name = _identifier(channel)

            def signal(_session: Any = None) -> None:
                self._pending.add(name)
                self._ready.set()

            found = self._hooks[channel] = signal
        return found

    def start(self) -> None:
        """Start sending (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="commit-signal")

    async def _run(self) -> None:
        import asyncpg

        failures = 0
        loop = asyncio.get_running_loop()
        last_sent = -math.inf
        while True:
            await self._ready.wait()
            # The rate bound: a commit within min_interval of the last NOTIFY waits for the rest
            # of it, with every other commit made meanwhile (the first after a quiet spell waits
            # for nothing).
            rest = last_sent + self._min_interval - loop.time()
            if rest > 0:
                await asyncio.sleep(rest)
            self._ready.clear()
            channels, self._pending = self._pending, set()
            try:
                if self._connection is None or self._connection.is_closed():
                    self._connection = await asyncpg.connect(self._dsn, timeout=CONNECT_SECONDS)
                await self._connection.execute("; ".join(f"NOTIFY {c}" for c in sorted(channels)))
                last_sent = loop.time()
                self.sent += 1
                failures = 0
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                failures += 1
                logger.warning(
                    "commit signal not sent: the workers' poll takes over",
                    extra={"error": f"{type(error).__name__}: {error}", "failures": failures},
                )
                await self._drop_connection()
                await asyncio.sleep(backoff_seconds(failures, base=0.5, cap=10.0))

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.terminate()

    async def close(self) -> None:
        """Stop sending and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop_connection()


class WakeListener:
    """A dedicated connection that ``LISTEN``s and calls the wakers subscribed to each channel.

    The connection is checked every ``keepalive_seconds`` (a partitioned network closes nothing);
    a lost one is opened again with backoff while the workers poll, and once it is back every
    waker is called once (what was committed in between has no NOTIFY waiting for it).
    """

    def __init__(
        self,
        dsn: str,
        *,
        keepalive_seconds: float = 10.0,
        reconnect_base_seconds: float = 0.5,
        reconnect_max_seconds: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._keepalive = keepalive_seconds
        self._reconnect_base = reconnect_base_seconds
        self._reconnect_max = reconnect_max_seconds
        self._wakers: dict[str, list[Callable[[], None]]] = {}
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # set while listening
        self.disconnected = asyncio.Event()  # set while not
        self.disconnected.set()
        self.backend_pid: int | None = None  # the listening connection's server process

    def subscribe(self, channel: str, waker: Callable[[], None]) -> None:
        """Call ``waker`` (no arguments, does not block) on each NOTIFY on ``channel``."""
        self._wakers.setdefault(_identifier(channel), []).append(waker)

    def start(self) -> None:
        """Start listening (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="wake-listener")

    def _wake(self, channel: str) -> None:
        for waker in self._wakers.get(channel, ()):
            waker()

    def _on_notify(self, _connection: Any, _pid: int, channel: str, _payload: str) -> None:
        self._wake(channel)

    async def run(self) -> None:
        """Listen until stopped, reconnecting after a loss."""
        import asyncpg

        failures = 0
        while not self._stopping.is_set():
            connection: Any = None
            try:
                connection = await asyncpg.connect(self._dsn, timeout=CONNECT_SECONDS)
                lost = asyncio.Event()
                connection.add_termination_listener(_setter(lost))
                for channel in self._wakers:
                    await connection.add_listener(channel, self._on_notify)
                self.backend_pid = connection.get_server_pid()
                self.disconnected.clear()
                self.connected.set()
                if failures:
                    logger.info("wake listener connected again", extra={"failures": failures})
                failures = 0
                for channel in self._wakers:
                    self._wake(channel)
                while not self._stopping.is_set() and not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            _first(lost, self._stopping), timeout=self._keepalive
                        )
                    if not self._stopping.is_set() and not lost.is_set():
                        await connection.execute("SELECT 1", timeout=CONNECT_SECONDS)
                if lost.is_set() and not self._stopping.is_set():
                    raise ConnectionError("the listening connection was closed")
            except (
                OSError,
                TimeoutError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
            ) as error:
                failures += 1
                logger.warning(
                    "wake listener lost its connection: the workers poll until it is back",
                    extra={"error": f"{type(error).__name__}: {error}", "failures": failures},
                )
            finally:
                self.connected.clear()
                self.disconnected.set()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.terminate()
            if failures and not self._stopping.is_set():
                pause = backoff_seconds(
                    failures, base=self._reconnect_base, cap=self._reconnect_max
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=pause)

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    """A callback (of one argument, ignored) that sets ``event``."""
    return lambda _argument: event.set()


async def _first(*events: asyncio.Event) -> None:
    """Return as soon as one of the events is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def commit_signal(database_url: str, *, min_interval: float = 0.01) -> CommitSignal | None:
    """A started ``CommitSignal`` for the database (None on SQLite: no other process listens),
    sending at most one NOTIFY per ``min_interval`` seconds."""
    dsn = listen_dsn(database_url)
    if dsn is None:
        return None
    signal = CommitSignal(dsn, min_interval=min_interval)
    signal.start()
    return signal


def wake_listener(
    database_url: str, subscriptions: dict[str, list[Callable[[], None]]]
) -> WakeListener | None:
    """A ``WakeListener`` calling each channel's wakers, started (None on SQLite)."""
    dsn = listen_dsn(database_url)
    if dsn is None:
        return None
    listener = WakeListener(dsn)
    for channel, wakers in subscriptions.items():
        for waker in wakers:
            listener.subscribe(channel, waker)
    listener.start()
    return listener
