"""Issue 15, crafted cursors (notify): /inbox, /deliveries and the SSE Last-Event-ID are 400s."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc


def crafted(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


UUID = "0b0b5a8e-3f5e-4a43-9d5a-7f3c2b1a0e99"
INBOX = [
    [False, "2026-12-01T10:00:00", UUID],  # naive
    ["yes", "2026-12-01T10:00:00+08:00", UUID],
    [0, "2026-12-01T10:00:00+08:00", UUID],
    [False, "0001-01-01T00:00:00+14:00", UUID],
    [False, "2026-12-01T10:00:00+08:00", "\u0000"],
    [False, 1733000000, UUID],
    [False, "2026-12-01T10:00:00+08:00"],
]
PAIRS = [
    ["2026-12-01T10:00:00", UUID],
    ["9999-12-31T23:59:59-14:00", UUID],
    [None, UUID],
    ["2026-12-01T10:00:00+08:00", 7],
    ["2026-12-01T10:00:00+08:00"],
]


@pytest.mark.parametrize("values", INBOX, ids=lambda v: repr(v)[:30])
async def test_crafted_inbox_cursor(client: httpx.AsyncClient, tokens: Tokens, values: Any) -> None:
    response = await client.get(
        "/api/v1/inbox",
        params={"cursor": crafted(values)},
        headers=tokens.enterprise(random_uscc()),
    )
    assert response.status_code == 400, response.text
    assert problem(response)["code"] == "invalid_cursor"


@pytest.mark.parametrize("values", PAIRS, ids=lambda v: repr(v)[:30])
async def test_crafted_deliveries_cursor(
    client: httpx.AsyncClient, tokens: Tokens, values: Any
) -> None:
    response = await client.get(
        "/api/v1/deliveries",
        params={"cursor": crafted(values)},
        headers=tokens.staff(Role.ACCEPTOR, "310115"),
    )
    assert response.status_code == 400, response.text
    assert problem(response)["code"] == "invalid_cursor"


# Besides crafted keysets: a bare stream position is not an id the stream sends (it sends a
# message's (created_at, id)), whatever its digits.
POSITIONS = [["12"], ["-1"], ["1e5"], [" 12"], ["１２"], ["9" * 19], [12], [""], ["12", "34"]]


@pytest.mark.parametrize("values", PAIRS + POSITIONS, ids=lambda v: repr(v)[:30])
async def test_crafted_last_event_id(
    client: httpx.AsyncClient, tokens: Tokens, values: Any
) -> None:
    response = await client.get(
        "/api/v1/inbox/stream",
        headers={**tokens.enterprise(random_uscc()), "Last-Event-ID": crafted(values)},
    )
    assert response.status_code == 400, response.text
    assert problem(response)["code"] == "invalid_cursor"
