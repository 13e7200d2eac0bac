"""The staff work queue: the jurisdiction's open applications, filtered, keyset-paginated."""

from __future__ import annotations

import httpx

from govshared.auth import Role
from govshared.testing import Tokens, random_uscc


async def test_queue_filters_and_scopes(client: httpx.AsyncClient, tokens: Tokens) -> None:
    uscc = random_uscc()
    name = f"队列测试{uscc[-6:]}有限公司"
    ids = []
    for _ in range(3):
        created = await client.post(
            "/api/v1/applications",
            json={"item_code": "JXW-XK-006", "applicant_name": name},
            headers=tokens.enterprise(uscc),
        )
        ids.append(created.json()["id"])
    staff = tokens.staff(Role.ACCEPTOR, "310000")
    seen, cursor = [], None
    while True:
        params: dict[str, str | int] = {"q": name, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/staff/applications", params=params, headers=staff)).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids  # oldest first
    by_uscc = (
        await client.get("/api/v1/staff/applications", params={"q": uscc}, headers=staff)
    ).json()
    assert {a["id"] for a in by_uscc["items"]} == set(ids)
    filtered = await client.get(
        "/api/v1/staff/applications", params={"q": uscc, "state": "accepted"}, headers=staff
    )
    assert filtered.json()["items"] == []
    other_item = await client.get(
        "/api/v1/staff/applications", params={"q": uscc, "item_code": "JXW-XK-001"}, headers=staff
    )
    assert other_item.json()["items"] == []
    elsewhere = await client.get(
        "/api/v1/staff/applications",
        params={"q": uscc},
        headers=tokens.staff(Role.ACCEPTOR, "320000"),
    )
    assert elsewhere.json()["items"] == []
    assert (
        await client.get("/api/v1/staff/applications", headers=tokens.enterprise(uscc))
    ).status_code == 403
