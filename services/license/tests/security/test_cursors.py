"""Issue 15, crafted cursors (license): a 400 problem on every list."""

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
TASKS = [
    ["2026-13-01", UUID],
    [20261201, UUID],
    ["2026-12-01", "\u0000"],
    ["2026-12-01", 5],
    ["2026-12-01"],
    {"due_on": "2026-12-01"},
]
NUMBERS = [[5], [None], ["SH\u0000"], [["a"]], ["x" * 300], [1, 2]]


@pytest.mark.parametrize("values", TASKS, ids=lambda v: repr(v)[:30])
async def test_crafted_cursor_on_verification_tasks(
    client: httpx.AsyncClient, tokens: Tokens, values: Any
) -> None:
    response = await client.get(
        "/api/v1/verification-tasks",
        params={"cursor": crafted(values)},
        headers=tokens.staff(Role.REVIEWER),
    )
    assert response.status_code == 400, response.text
    assert problem(response)["code"] == "invalid_cursor"


@pytest.mark.parametrize("values", NUMBERS, ids=lambda v: repr(v)[:30])
async def test_crafted_cursor_on_the_registers(
    client: httpx.AsyncClient, tokens: Tokens, values: Any
) -> None:
    staff = tokens.staff(Role.ACCEPTOR)
    for path, headers in (
        ("/api/v1/licences", staff),
        (f"/api/v1/enterprises/{random_uscc()}/licences", tokens.service()),
        ("/api/v1/reform-items", {}),
    ):
        response = await client.get(path, params={"cursor": crafted(values)}, headers=headers)
        assert response.status_code == 400, (path, response.text)
        assert problem(response)["code"] == "invalid_cursor"


@pytest.mark.parametrize("values", TASKS, ids=lambda v: repr(v)[:30])
async def test_crafted_cursor_on_the_inspection_lists(
    client: httpx.AsyncClient, tokens: Tokens, values: Any
) -> None:
    """The inspection plans, tasks, the public results and plans page through the shared codec
    too."""
    staff = tokens.staff(Role.APPROVER)
    for path, headers, cursor in (
        ("/api/v1/inspection-plans", staff, crafted(values)),
        ("/api/v1/inspections", staff, crafted(values)),
        ("/api/v1/public/inspection-results", {}, crafted(values)),
        ("/api/v1/public/inspection-plans", {}, crafted(values)),
    ):
        response = await client.get(path, params={"cursor": cursor}, headers=headers)
        assert response.status_code == 400, (path, response.text)
        assert problem(response)["code"] == "invalid_cursor"
