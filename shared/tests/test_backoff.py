"""The one backoff schedule, and the lease that must outlast a relay's post."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from govshared.backoff import backoff_seconds
from govshared.settings import CommonSettings


def test_backoff_doubles_up_to_the_cap_with_jitter_on_the_upper_half() -> None:
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 2.0), (10_000, 2.0)]:
        for _ in range(50):
            assert ceiling / 2 <= backoff_seconds(attempt, base=0.5, cap=2.0) <= ceiling
    assert [backoff_seconds(a, base=1, cap=600, jitter=False) for a in (1, 2, 11, 12)] == [
        1,
        2,
        600,
        600,
    ]


class _Settings(CommonSettings):
    def default_db_name(self) -> str:
        return "unused.db"


def test_the_lease_must_be_at_least_twice_the_http_timeout(tmp_path: Path) -> None:
    assert _Settings(data_dir=tmp_path).relay_lease_seconds == 30.0
    _Settings(data_dir=tmp_path, http_timeout_seconds=10, relay_lease_seconds=20)
    with pytest.raises(ValidationError, match="RELAY_LEASE_SECONDS"):
        _Settings(data_dir=tmp_path, http_timeout_seconds=10, relay_lease_seconds=19)
