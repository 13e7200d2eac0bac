"""The one backoff schedule of the suite: exponential, capped, with jitter on the upper half.

The outbox relay (per event and per destination), notify's deliveries and the sealing queues all
wait this way after a failure, so that a neighbour that comes back is not hit by every retry at once.
"""

from __future__ import annotations

import random

# 2**62 seconds is beyond any cap; a bigger exponent would only overflow the float.
_MAX_EXPONENT = 62


def backoff_seconds(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """Seconds to wait after the ``attempt``-th failure in a row (1 for the first).

    The ceiling is ``base · 2^(attempt-1)``, at most ``cap``; with ``jitter`` the wait is drawn
    uniformly from the upper half of it, so that waiters spread out yet none retries sooner than
    half the schedule.
    """
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), _MAX_EXPONENT))
    if not jitter:
        return ceiling
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security
