"""Hostile free-form data in license: a change's particulars are bounded, alone and merged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from govshared.auth import Role
from govshared.freeform import MAX_BYTES, MAX_STRING_CHARS
from govshared.testing import Tokens, problem, random_uscc

Issue = Callable[..., Awaitable[str]]


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep."""
    value: dict[str, Any] = {"leaf": "值"}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def test_particulars_of_a_change_are_bounded(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    licence_no = await issue(uscc=random_uscc())
    approver = tokens.staff(Role.APPROVER, "310000")
    url = f"/api/v1/licences/{licence_no}/changes"

    async def change(particulars: dict[str, Any]) -> httpx.Response:
        # The authority's own change (Art. 8): with its legal basis and the compensation told.
        body = {
            "particulars": particulars,
            "reason": "变更许可范围",
            "legal_basis": "《食盐专营办法》（2017年修订）第十一条",
            "compensation_note": "对因变更造成的财产损失依法给予补偿，请于60日内提出",
        }
        return await client.post(url, json=body, headers=approver)

    deep = await change(nested(256))
    assert deep.status_code == 422 and problem(deep)["code"] == "validation_failed"
    assert [p["name"] for p in problem(deep)["invalid_params"]] == ["body.particulars"]  # type: ignore[union-attr]
    assert (await change({"许可范围": "x" * (MAX_STRING_CHARS + 1)})).status_code == 422

    chunk = MAX_STRING_CHARS
    half = MAX_BYTES // chunk // 2 + 1
    first = await change({f"a{i}": "a" * chunk for i in range(half)})
    assert first.status_code == 200, first.text
    grown = await change({f"b{i}": "b" * chunk for i in range(half)})
    assert grown.status_code == 422, grown.text
    assert [p["name"] for p in problem(grown)["invalid_params"]] == ["particulars"]  # type: ignore[union-attr]

    detail = await client.get(f"/api/v1/licences/{licence_no}", headers=approver)
    assert detail.status_code == 200
    assert detail.json()["version"] == 2  # the refused changes made no version
    assert not any(k.startswith("b") for k in detail.json()["particulars"])
