"""Issue 15: the one cursor codec every list uses."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from govshared.pagination import InvalidCursor, decode_keyset, encode_cursor


def test_round_trip_in_utc() -> None:
    at = datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    ident = uuid.uuid4()
    cursor = encode_cursor([False, at.isoformat(), str(ident)])
    read, when, back = decode_keyset(cursor, bool, datetime, uuid.UUID)
    assert read is False and back == ident
    assert when == at and when.tzinfo is UTC
    assert decode_keyset(encode_cursor(["2026-12-01"]), date) == (date(2026, 12, 1),)


@pytest.mark.parametrize(
    ("values", "kinds"),
    [
        (["2026-12-01T10:00:00"], (datetime,)),
        (["0001-01-01T00:00:00+14:00"], (datetime,)),
        ([1], (str,)),
        (["a\x00"], (str,)),
        (["x" * 201], (str,)),
        (["true"], (bool,)),
        ([0], (bool,)),
        (["not-a-uuid"], (uuid.UUID,)),
        (["2026-02-30"], (date,)),
        ([], (str,)),
        ({"a": 1}, (str,)),
    ],
)
def test_crafted_values_are_invalid_cursors(values: object, kinds: tuple[type, ...]) -> None:
    with pytest.raises(InvalidCursor) as caught:
        decode_keyset(encode_cursor(values), *kinds)  # type: ignore[arg-type]
    assert caught.value.status == 400


@pytest.mark.parametrize("cursor", ["%%%", "é", "x" * 2000, "W" * 7, "__", "WzFd" + "=" * 9])
def test_undecodable_cursors(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_keyset(cursor, str)
