"""Recording a delivery worker's results as they come (``ResultRecorder``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from govshared.db import is_database_outage
from notify.delivery import Attempt

logger = logging.getLogger("notify.worker")

# Results are written together: a write waits this long for more unless this many are waiting.
RECORD_GATHER_SECONDS = 0.05
RECORD_BATCH = 100
# A write of results the database refused (a failover, a cut) is tried again after these many
# seconds, doubling up to a second, while the lease lasts: left claimed, the rows would be taken
# back once it ends and every one of them sent again.
RECORD_RETRY_SECONDS = 0.1


class ResultRecorder:
    """Records attempts' results as they come, in the background: each write takes every result
    that arrived while the previous one ran (one transaction each). The lanes go on sending
    meanwhile; ``flush`` waits until every result is in. A write the database refuses is tried
    again until ``until`` (the lease's end, loop time)."""

    def __init__(self, write: Callable[[list[Attempt]], Awaitable[None]], *, until: float) -> None:
        self._write = write
        self._until = until
        self._waiting: list[Attempt] = []
        self._task: asyncio.Task[None] | None = None
        self._failure: Exception | None = None

    def add(self, attempt: Attempt) -> None:
        """Queue one result for recording (a write starts now unless one is running)."""
        self._waiting.append(attempt)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="delivery-results")

    async def _drain(self) -> None:
        while self._waiting:
            if len(self._waiting) < RECORD_BATCH:
                # A moment for the lanes' next results to join this write: one transaction for
                # a few dozen results, not one each (a fifth of the email rate otherwise).
                await asyncio.sleep(RECORD_GATHER_SECONDS)
            batch, self._waiting = self._waiting, []
            try:
                await self._write_within_lease(batch)
            except Exception as exc:  # the rows stay claimed until their lease ends
                logger.exception("delivery results not recorded", extra={"count": len(batch)})
                self._failure = self._failure or exc

    async def _write_within_lease(self, batch: list[Attempt]) -> None:
        loop = asyncio.get_running_loop()
        delay = RECORD_RETRY_SECONDS
        while True:
            try:
                await self._write(batch)
                return
            except Exception as exc:
                # Only while the database is out of reach: a write it refuses for what it holds
                # would be refused again, holding up the pass.
                if not is_database_outage(exc) or loop.time() + delay >= self._until:
                    raise
                logger.warning(
                    "delivery results not recorded yet, trying again",
                    extra={"count": len(batch), "retry_in": delay},
                )
            await asyncio.sleep(delay)
            delay = min(2 * delay, 1.0)

    async def flush(self) -> None:
        """Wait until every result added is recorded (raises what a write raised)."""
        if self._task is not None:
            await self._task
        await self._drain()
        if self._failure is not None:
            raise self._failure
