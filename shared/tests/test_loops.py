"""The background loop every relay, sealer, timer and delivery worker polls with."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from govshared.loops import BackgroundLoop


async def test_a_full_batch_runs_the_next_pass_at_once_then_it_polls() -> None:
    passes: list[float] = []
    batches = iter([True, True, False])

    async def step() -> bool:
        passes.append(time.monotonic())
        return next(batches, False)

    loop = BackgroundLoop(step, what="test pass", poll_seconds=0.3)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.45)
    loop.stop()
    await asyncio.wait_for(task, timeout=1)
    assert len(passes) == 4  # three back to back, then one after a poll
    assert passes[2] - passes[0] < 0.1
    assert passes[3] - passes[2] >= 0.29


async def test_a_wake_runs_a_pass_before_the_poll_and_stop_cuts_the_sleep_short() -> None:
    passes = 0

    async def step() -> bool:
        nonlocal passes
        passes += 1
        return False

    wake = asyncio.Event()
    loop = BackgroundLoop(step, what="test pass", poll_seconds=60, wake=wake)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.05)
    wake.set()  # a commit queued work
    await asyncio.sleep(0.05)
    assert passes == 2
    started = time.monotonic()
    loop.stop()
    await asyncio.wait_for(task, timeout=1)
    assert time.monotonic() - started < 0.5
    assert loop.stopping


async def test_failures_are_logged_retried_with_backoff_and_forgotten_after_a_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    results: list[BaseException | bool] = [RuntimeError("down")] * 3 + [False]
    seen_failures: list[int] = []
    when: list[float] = []

    async def step() -> bool:
        when.append(time.monotonic())
        seen_failures.append(loop.failures)
        if len(when) == 5:
            loop.stop()
        result = results.pop(0) if results else False
        if isinstance(result, BaseException):
            raise result
        return result

    loop = BackgroundLoop(step, what="test pass", poll_seconds=0.05, failure_cap_seconds=0.15)
    task = asyncio.create_task(loop.run())
    await asyncio.wait_for(task, timeout=2)
    assert seen_failures[:5] == [0, 1, 2, 3, 0]
    gaps = [b - a for a, b in itertools.pairwise(when)]
    # Never sooner than a poll; the third failure in a row waits at least half the cap.
    assert all(gap >= 0.049 for gap in gaps)
    assert gaps[2] >= 0.074
    assert [r.getMessage() for r in caplog.records].count("test pass failed") == 3
