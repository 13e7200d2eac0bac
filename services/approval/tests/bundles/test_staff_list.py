"""The staff's list of bundle applications: scoped to their jurisdiction, paginated, combined."""

from __future__ import annotations

import httpx

from govshared.auth import Role
from govshared.testing import Tokens, random_uscc

SALT = "YJS-YY-001"  # items in 310115 (浦东新区) and 310000
CHEMICALS = "YJS-HX-001"  # both items in 310000
SALT_FORM = {"warehouse_address": "上海市浦东新区申江路1号", "warehouse_area": 1200}


async def apply(client: httpx.AsyncClient, tokens: Tokens, uscc: str, code: str) -> str:
    response = await client.post(
        "/api/v1/bundle-applications",
        json={
            "bundle_code": code,
            "applicant_name": "上海化工示范有限公司",
            "form": SALT_FORM if code == SALT else {},
        },
        headers=tokens.enterprise(uscc),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def every_page(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str | int
) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        page = await client.get(
            "/api/v1/staff/bundle-applications",
            params={**params, **({"cursor": cursor} if cursor else {})},
            headers=headers,
        )
        assert page.status_code == 200, page.text
        found += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found


async def test_staff_see_the_bundles_with_an_item_of_their_jurisdiction_newest_first(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    chemicals = [await apply(client, tokens, uscc, CHEMICALS) for _ in range(3)]
    salt = await apply(client, tokens, uscc, SALT)

    city = await every_page(client, tokens.staff(Role.ACCEPTOR, "310000"), limit=2)
    city_ids = [b["id"] for b in city]
    assert len(city_ids) == len(set(city_ids))  # no page repeats another
    assert [i for i in city_ids if i in {*chemicals, salt}] == [salt, *reversed(chemicals)]
    shown = next(b for b in city if b["id"] == chemicals[0])
    # the combined progress: the filing is filed at once, the licence is still under review
    assert shown["status"] == "in_progress" and shown["progress"] == {"decided": 1, "total": 2}
    assert [i["item_code"] for i in shown["items"]] == ["JXW-XK-004", "JXW-BA-009"]

    # 浦东新区 handles only the salt production item: it sees that bundle, whole, not the others
    pudong = await every_page(client, tokens.staff(Role.REVIEWER, "310115"), limit=50)
    pudong_ids = {b["id"] for b in pudong}
    assert salt in pudong_ids and not pudong_ids & set(chemicals)
    assert len(next(b for b in pudong if b["id"] == salt)["items"]) == 2
    # another province sees none of them; a filter by bundle keeps to that bundle
    elsewhere = await every_page(client, tokens.staff(Role.ACCEPTOR, "320000"))
    assert not {b["id"] for b in elsewhere} & {*chemicals, salt}
    only = await every_page(client, tokens.staff(Role.ADMIN), bundle_code=SALT, limit=100)
    assert salt in {b["id"] for b in only} and {b["bundle_code"] for b in only} == {SALT}

    # an enterprise has no staff list and still sees only its own
    assert (
        await client.get("/api/v1/staff/bundle-applications", headers=tokens.enterprise(uscc))
    ).status_code == 403
    other = random_uscc()
    mine = await apply(client, tokens, other, CHEMICALS)
    own = await client.get("/api/v1/bundle-applications", headers=tokens.enterprise(other))
    assert [b["id"] for b in own.json()["items"]] == [mine]
    bad = await client.get(
        "/api/v1/staff/bundle-applications",
        params={"cursor": "nonsense"},
        headers=tokens.staff(Role.ACCEPTOR, "310000"),
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_cursor"
