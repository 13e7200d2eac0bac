"""Issue 15, crafted cursors (approval): every list answers a bad cursor with a 400 problem."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc


def crafted(values: Any) -> str:
    raw = json.dumps(values).encode() if not isinstance(values, bytes) else values
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


UUID = "0b0b5a8e-3f5e-4a43-9d5a-7f3c2b1a0e99"
APPLICATIONS = [
    ["2026-12-01T10:00:00", UUID],  # a naive time: PostgreSQL cannot compare it
    ["0001-01-01T00:00:00+14:00", UUID],  # before year 1 in UTC
    ["9999-12-31T23:59:59-14:00", UUID],  # after year 9999 in UTC
    [1, 2],
    [None, None],
    [{"a": 1}, [1]],
    ["2026-12-01T10:00:00+08:00", "not-a-uuid"],
    ["2026-12-01T10:00:00+08:00\u0000", UUID],
    ["2026-12-01T10:00:00+08:00"],
    "a string",
    b"\xff\xfe",
    b"[" * 5000 + b"]" * 5000,
]
QUEUE = [
    ["2026-12-01", "2026-12-01T10:00:00", UUID],
    ["2026-13-01", "2026-12-01T10:00:00+08:00", UUID],
    ["99999-01-01", "2026-12-01T10:00:00+08:00", UUID],
    [20261201, "2026-12-01T10:00:00+08:00", UUID],
    ["2026-12-01", "0001-01-01T00:00:00+01:00", UUID],
    ["2026-12-01", "2026-12-01T10:00:00+08:00", "\u0000"],
]


@pytest.mark.parametrize("values", APPLICATIONS, ids=lambda v: repr(v)[:30])
async def test_crafted_cursor_on_the_applicants_list(
    client: httpx.AsyncClient, tokens: Tokens, values: Any
) -> None:
    response = await client.get(
        "/api/v1/applications",
        params={"cursor": crafted(values)},
        headers=tokens.enterprise(random_uscc()),
    )
    assert response.status_code == 400, response.text
    assert problem(response)["code"] == "invalid_cursor"


@pytest.mark.parametrize("values", QUEUE + APPLICATIONS, ids=lambda v: repr(v)[:30])
async def test_crafted_cursor_on_the_staff_queue(
    client: httpx.AsyncClient, tokens: Tokens, values: Any
) -> None:
    response = await client.get(
        "/api/v1/staff/applications",
        params={"cursor": crafted(values)},
        headers=tokens.staff(Role.ACCEPTOR),
    )
    assert response.status_code == 400, response.text
    assert problem(response)["code"] == "invalid_cursor"


@pytest.mark.parametrize("cursor", ["%%%", "x" * 5000, crafted([1]), crafted(["a\u0000"])])
async def test_crafted_cursor_on_the_catalogue(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/api/v1/items", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert problem(response)["code"] == "invalid_cursor"
