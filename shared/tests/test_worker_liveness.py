"""A worker's liveness: ``/livez`` on its metrics port answers 200 while its event loop runs and
503 once the loop has stopped marking its heartbeat, so that Kubernetes restarts a wedged worker;
every other path is the Prometheus metrics."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.error
import urllib.request

from govshared.observability import Heartbeat, serve_worker_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


async def test_livez_follows_the_event_loop_and_metrics_are_served() -> None:
    port = _free_port()
    heartbeat = serve_worker_metrics(
        host="127.0.0.1", port=port, heartbeat=Heartbeat(beat_seconds=0.05, stale_after=0.5)
    )
    try:
        status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/livez")
        assert (status, body) == (200, b"alive\n")
        status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and b"python_info" in body
        # The loop blocked (a CPU-bound step, a deadlock): the server's thread still answers 503.
        seen: list[int] = []
        probe = threading.Thread(
            target=lambda: (time.sleep(0.8), seen.append(_get(f"http://127.0.0.1:{port}/livez")[0]))
        )
        probe.start()
        time.sleep(1.3)  # noqa: ASYNC251 - blocks this event loop, as a wedged worker's would
        probe.join()
        assert seen == [503]
        await asyncio.sleep(0.2)  # the loop runs again: alive again
        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/livez"))[0] == 200
        assert heartbeat.task is not None
        heartbeat.task.cancel()  # the loop gone: no more marks
        await asyncio.sleep(0.8)
        status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/livez")
        assert (status, body) == (503, b"event loop stalled\n")
    finally:
        if heartbeat.task is not None:
            heartbeat.task.cancel()
