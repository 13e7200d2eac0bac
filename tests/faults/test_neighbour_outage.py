"""Notify stopped for a few seconds while applications keep coming: approval's relay pauses it
(its posts during the outage are few, not one per event) and drains the backlog, in order and
each event once, as soon as notify answers again."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from govshared.testing import random_uscc
from tests.e2e.test_slice import BODY, inbox_numbers
from tests.faults.conftest import RELAY_PROBE_MAX_SECONDS, FaultSuite, wait_until

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 4.0


class StandIn:
    """A loopback HTTP server on notify's port while notify is down: it counts the posts and
    answers each 503, as a load balancer with no live backend does."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.posts: list[float] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> StandIn:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.posts.append(time.monotonic())
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
                await writer.drain()
                break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_notify_stopped_is_paused_then_drained(faulty: FaultSuite) -> None:
    uscc = random_uscc()
    notify = faulty.web["notify"]
    headers = faulty.tokens.enterprise(uscc)
    numbers: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client:

        async def submit() -> None:
            response = await client.post(
                f"{faulty.url('approval')}/api/v1/applications", json=BODY, headers=headers
            )
            assert response.status_code == 201, response.text
            numbers.append(response.json()["application_no"])

        notify.stop()
        async with StandIn(notify.port) as stand_in:
            started = time.monotonic()
            while time.monotonic() - started < OUTAGE_SECONDS:
                await submit()  # a new event for notify every 0.1 s
                await asyncio.sleep(0.1)
            outage = time.monotonic() - started
        notify.start()
        await asyncio.to_thread(notify.wait_ready, 180.0)

        async def drained() -> bool:
            found = await inbox_numbers(client, faulty, uscc)  # type: ignore[arg-type]
            return all(any(n in f for f in found) for n in numbers)

        took = await wait_until(drained, within=15)
        found = await inbox_numbers(client, faulty, uscc)  # type: ignore[arg-type]
    assert len(numbers) >= 5
    # Before: every new event was tried at once (about 19 failed posts a second). Now: the first
    # failure, then one probe per pause (0.25 s, then doubling up to the cap).
    assert 1 <= len(stand_in.posts) <= 3 + outage / (RELAY_PROBE_MAX_SECONDS / 2), stand_in.posts
    # Once notify answers, the next probe finds it (at most one pause) and the rest follows.
    assert took <= RELAY_PROBE_MAX_SECONDS + 3.0, (
        f"backlog drained {took:.1f} s after notify returned"
    )
    assert all(sum(n in f for f in found) == 1 for n in numbers)
