"""The platform's slice across three real services: submit → outbox → relay → notify → inbox."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from approval.catalogue.demo import required_materials
from govshared.auth import Role
from govshared.testing import problem, random_uscc
from tests.e2e.conftest import Suite

pytestmark = pytest.mark.e2e

BODY = {
    "item_code": "JXW-XK-002",
    "business_type": "new",
    "applicant_name": "上海盐业示范有限公司",
    "form": {"warehouse_address": "上海市浦东新区申江路1号", "warehouse_area": 1200},
}
# 受理 needs the materials or a recorded 容缺受理 (Art. 32): these tests upload none.
ACCEPT = {"tolerated_materials": required_materials("JXW-XK-002"), "deliver_by": "2099-12-31"}


async def inbox_numbers(client: httpx.AsyncClient, suite: Suite, uscc: str) -> list[str]:
    """Every application number mentioned in the enterprise's inbox messages (all pages)."""
    numbers: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = await client.get(
            f"{suite.url('notify')}/api/v1/inbox",
            params=params,
            headers=suite.tokens.enterprise(uscc),
        )
        assert page.status_code == 200, page.text
        body = page.json()
        numbers += [
            str(m.get("data", {}).get("application_no") or m.get("body", "")) for m in body["items"]
        ]
        cursor = body.get("next_cursor")
        if not cursor:
            return numbers


async def wait_for(predicate: object, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def submit(client: httpx.AsyncClient, suite: Suite, uscc: str) -> dict[str, str]:
    response = await client.post(
        f"{suite.url('approval')}/api/v1/applications",
        json=BODY,
        headers=suite.tokens.enterprise(uscc),
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def decide(client: httpx.AsyncClient, suite: Suite, application_id: str) -> None:
    """Accept (容缺), review and approve the application as the staff of 310000 would."""
    case = f"{suite.url('approval')}/api/v1/applications/{application_id}"
    for action, role, body in (
        ("accept", Role.ACCEPTOR, ACCEPT),
        ("review", Role.REVIEWER, {"opinion": "材料齐全"}),
        ("approve", Role.APPROVER, {"opinion": "同意"}),
    ):
        done = await client.post(
            f"{case}/{action}", json=body, headers=suite.tokens.staff(role, "310000")
        )
        assert done.status_code == 200, done.text


async def test_submission_reaches_the_enterprise_inbox_and_no_one_elses(suite: Suite) -> None:
    uscc, other = random_uscc(), random_uscc()
    async with httpx.AsyncClient(timeout=10) as client:
        created = await submit(client, suite, uscc)
        assert created["reform_mode"] == "optimize_service"  # asked of the real license service

        async def arrived() -> bool:
            return any(
                created["application_no"] in n for n in await inbox_numbers(client, suite, uscc)
            )

        await wait_for(arrived)
        assert not any(
            created["application_no"] in n for n in await inbox_numbers(client, suite, other)
        )
        anonymous = await client.get(f"{suite.url('notify')}/api/v1/inbox")
        assert problem(anonymous)["status"] == 401


async def test_cancelled_item_refused_using_license_data(suite: Suite) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{suite.url('approval')}/api/v1/applications",
            json={**BODY, "item_code": "JXW-QX-008"},
            headers=suite.tokens.enterprise(random_uscc()),
        )
    assert problem(response)["code"] == "approval_cancelled"


async def test_notify_down_loses_nothing_and_duplicates_nothing(suite: Suite) -> None:
    uscc = random_uscc()
    notify = suite.processes["notify"]
    async with httpx.AsyncClient(timeout=10) as client:
        notify.kill()
        numbers = [(await submit(client, suite, uscc))["application_no"] for _ in range(5)]
        await asyncio.sleep(1.0)  # the relay tries, fails and backs off
        notify.start()
        await asyncio.to_thread(notify.wait_ready)

        async def all_arrived() -> bool:
            found = await inbox_numbers(client, suite, uscc)
            return all(any(n in f for f in found) for n in numbers)

        await wait_for(all_arrived, within=30)
        await asyncio.sleep(1.5)  # give any duplicate a chance to show up
        found = await inbox_numbers(client, suite, uscc)
        for number in numbers:
            assert sum(number in f for f in found) == 1, found


async def test_acceptance_notice_is_served_and_proof_returns_to_approval(suite: Suite) -> None:
    """A critical notice (受理通知) reaches the inbox; notify's proof of service joins the trail."""
    uscc = random_uscc()
    async with httpx.AsyncClient(timeout=10) as client:
        created = await submit(client, suite, uscc)
        accepted = await client.post(
            f"{suite.url('approval')}/api/v1/applications/{created['id']}/accept",
            json=ACCEPT,
            headers=suite.tokens.staff(Role.ACCEPTOR, "310000"),
        )
        assert accepted.status_code == 200, accepted.text

        async def served() -> bool:
            trail = await client.get(
                f"{suite.url('approval')}/api/v1/applications/{created['id']}/events",
                headers=suite.tokens.enterprise(uscc),
            )
            return any(
                e["action"] == "notice_served"
                and e["details"]["cause_event_type"] == "cn.gov.approval.application.accepted.v1"
                for e in trail.json()
            )

        await wait_for(served, within=30)
        inbox = await client.get(
            f"{suite.url('notify')}/api/v1/inbox", headers=suite.tokens.enterprise(uscc)
        )
        assert any("《受理通知书》" in m["body"] for m in inbox.json()["items"]), inbox.text
