"""The one background loop of the suite: relays, sealers, timers and deliveries poll with it.

A worker gives it one pass (``step``) and how often to poll; the loop runs the pass until stopped.
A pass that found a full batch says so (returns True) and the next one starts at once; otherwise
the loop sleeps until the poll interval has passed or something wakes it (a commit that queued
work sets the wake event). A pass that raises is logged and retried, never fatal; failures in a
row wait the suite's backoff (``govshared.backoff``: one to two poll intervals, doubling, up to
``failure_cap_seconds``, never less than a poll interval), so that a database that is down is not
hammered nor its log flooded, and one that comes back is used again within seconds.
``stop`` ends the loop after the current pass and cuts any sleep short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from govshared.backoff import backoff_seconds

logger = logging.getLogger("govshared.loops")

# How long failing passes in a row may wait at most (unless the poll interval is longer).
FAILURE_CAP_SECONDS = 5.0


class BackgroundLoop:
    """Runs ``step`` until stopped: at once again when it returns True, else after a poll."""

    def __init__(
        self,
        step: Callable[[], Awaitable[bool]],
        *,
        what: str,
        poll_seconds: float,
        wake: asyncio.Event | None = None,
        failure_cap_seconds: float = FAILURE_CAP_SECONDS,
        log: logging.Logger = logger,
    ) -> None:
        self._step = step
        self._what = what
        self._log = log
        self._poll_seconds = poll_seconds
        self._failure_cap = max(poll_seconds, failure_cap_seconds)
        # Without a wake event of the worker's own, only ``stop`` cuts a sleep short.
        self._wake = wake if wake is not None else asyncio.Event()
        self._stopping = False
        self.failures = 0  # failing passes in a row

    @property
    def stopping(self) -> bool:
        """True once ``stop`` was called."""
        return self._stopping

    def wake(self) -> None:
        """Run the next pass now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """End the loop after the current pass; a sleep ends at once."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Run passes until ``stop``."""
        while not self._stopping:
            # Cleared before the pass: a wake during it is not lost, the next sleep ends at once.
            self._wake.clear()
            try:
                more = await self._step()
            except Exception:
                self.failures += 1
                self._log.exception("%s failed", self._what, extra={"failures": self.failures})
                more = False
            else:
                self.failures = 0
            if more or self._stopping:
                continue
            await self._sleep(self._pause())

    def _pause(self) -> float:
        if not self.failures:
            return self._poll_seconds
        pause = backoff_seconds(self.failures + 1, base=self._poll_seconds, cap=self._failure_cap)
        return max(self._poll_seconds, pause)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
