"""A licence's 许可事项 come from the approved application across the real services: a new licence
carries the form's ``particular`` fields, and an approved 变更 changes them (行政许可法第四十九条)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from govshared.testing import random_uscc
from tests.e2e.conftest import Suite
from tests.e2e.test_slice import BODY, decide, wait_for

pytestmark = pytest.mark.e2e


async def _approved(
    client: httpx.AsyncClient, suite: Suite, uscc: str, body: dict[str, Any]
) -> None:
    created = await client.post(
        f"{suite.url('approval')}/api/v1/applications",
        json=body,
        headers=suite.tokens.enterprise(uscc),
    )
    assert created.status_code == 201, created.text
    await decide(client, suite, created.json()["id"])


async def test_the_licence_carries_the_approved_particulars_and_a_change_changes_them(
    suite: Suite,
) -> None:
    uscc = random_uscc()
    enterprise = suite.tokens.enterprise(uscc)
    licences = f"{suite.url('license')}/api/v1/enterprises/{uscc}/licences"
    async with httpx.AsyncClient(timeout=10) as client:
        await _approved(client, suite, uscc, BODY)
        found: list[dict[str, Any]] = []

        async def issued() -> bool:
            found[:] = (await client.get(licences, headers=enterprise)).json()["items"]
            return bool(found)

        await wait_for(issued, within=30)
        detail = f"{suite.url('license')}/api/v1/licences/{found[0]['licence_no']}"
        licence = (await client.get(detail, headers=enterprise)).json()
        assert licence["particulars"] == {
            "仓储地址": "上海市浦东新区申江路1号",
            "仓储面积（平方米）": 1200,
        }

        moved = {"warehouse_address": "上海市浦东新区航头路9号", "warehouse_area": 1200}
        await _approved(client, suite, uscc, {**BODY, "business_type": "change", "form": moved})

        async def changed() -> bool:
            current = (await client.get(detail, headers=enterprise)).json()
            return bool(current["particulars"]["仓储地址"] == moved["warehouse_address"])

        await wait_for(changed, within=30)
        after = (await client.get(detail, headers=enterprise)).json()
        assert after["particulars"]["仓储面积（平方米）"] == 1200
        assert [v["status"] for v in after["versions"]] == ["superseded", "valid"]
