"""The catalogue: public reads with filters, versioned guides, admin publication, statistics."""

from __future__ import annotations

import copy
import uuid

import httpx

from approval.bundles.catalogue import demo_bundles
from approval.catalogue.demo import demo_items
from govshared.auth import Role
from govshared.chinatime import china_today
from govshared.events import ReformMode
from govshared.jurisdictions import ancestors
from govshared.testing import Tokens, problem, random_uscc
from licensing.catalogue.service import shipped_catalogue

from ..conftest import REFORM_MODES


async def test_public_list_filters_and_paginates(client: httpx.AsyncClient) -> None:
    everything = (await client.get("/api/v1/items", params={"limit": 200})).json()["items"]
    codes = [i["code"] for i in everything]
    assert len([c for c in codes if c.startswith("JXW-")]) >= 12
    assert codes == sorted(codes)

    salt = (await client.get("/api/v1/items", params={"q": "食盐"})).json()["items"]
    assert {i["code"] for i in salt} >= {"JXW-XK-001", "JXW-XK-002"}
    filing = (
        await client.get("/api/v1/items", params={"reform_mode": "approval_to_filing"})
    ).json()
    assert {i["code"] for i in filing["items"]} >= {"JXW-BA-009", "JXW-BA-010"}
    assert all(i["reform_mode"] == "approval_to_filing" for i in filing["items"])
    instant = (await client.get("/api/v1/items", params={"is_instant": True})).json()["items"]
    assert instant and all(i["is_instant"] for i in instant)
    pudong = (await client.get("/api/v1/items", params={"jurisdiction": "310115"})).json()["items"]
    assert "JXW-XK-001" in {i["code"] for i in pudong}
    radio = (await client.get("/api/v1/items", params={"authority": "无线电管理局"})).json()[
        "items"
    ]
    assert {i["code"] for i in radio} >= {"JXW-XK-003", "JXW-XK-013"}

    first = (await client.get("/api/v1/items", params={"limit": 5})).json()
    second = (
        await client.get("/api/v1/items", params={"limit": 5, "cursor": first["next_cursor"]})
    ).json()
    assert [i["code"] for i in first["items"] + second["items"]] == codes[:10]
    assert (await client.get("/api/v1/items", params={"reform_mode": "maybe"})).status_code == 422


async def test_item_guide_has_every_element(client: httpx.AsyncClient) -> None:
    item = (await client.get("/api/v1/items/JXW-XK-001")).json()
    guide = item["guide"]
    assert item["jurisdiction"] == "310115"
    assert guide["delegation"]["to"] == "浦东新区经济和信息化委员会"
    assert guide["legal_basis"][0]["law"] == "《食盐专营办法》"
    for key in (
        "conditions",
        "refusal_grounds",
        "materials",
        "steps",
        "fees",
        "result_type",
        "supervision",
    ):
        assert guide[key], key
    assert any(m["replaced_by_licence_type"] == "business_licence" for m in guide["materials"])
    assert problem(await client.get("/api/v1/items/NOPE"))["code"] == "item_not_found"


async def test_statistics_are_computed_from_the_catalogue(client: httpx.AsyncClient) -> None:
    stats = (await client.get("/api/v1/items/statistics")).json()
    items = (await client.get("/api/v1/items", params={"limit": 200})).json()["items"]
    assert stats["items"] == len(items)
    by_mode = {m["mode"]: m["items"] for m in stats["by_reform_mode"]}
    assert by_mode["cancel_approval"] == sum(i["reform_mode"] == "cancel_approval" for i in items)
    assert sum(by_mode.values()) == len(items)
    assert stats["instant_items"] == sum(i["is_instant"] for i in items)
    reduced = sum(i["committed_limit_days"] < i["statutory_limit_days"] for i in items)
    assert stats["reduced_limit_share"] == round(reduced / len(items), 4)


async def test_admin_creates_revises_and_publishes_versions(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    admin = tokens.header(Role.ADMIN)
    base = (await client.get("/api/v1/items/JXW-XK-005")).json()
    code = f"JXW-T-{uuid.uuid4().hex[:6].upper()}"
    draft = {
        k: base[k]
        for k in (
            "name",
            "item_type",
            "authority",
            "jurisdiction",
            "is_instant",
            "statutory_limit_days",
            "committed_limit_days",
            "reform_mode",
            "guide",
        )
    }
    draft["name"] = "测试事项"
    assert (await client.post("/api/v1/items", json={**draft, "code": code})).status_code == 401
    assert (
        await client.post(
            "/api/v1/items", json={**draft, "code": code}, headers=tokens.staff(Role.ACCEPTOR)
        )
    ).status_code == 403
    created = await client.post("/api/v1/items", json={**draft, "code": code}, headers=admin)
    assert created.status_code == 201 and created.json()["status"] == "draft"
    # a draft is not in force
    assert (await client.get(f"/api/v1/items/{code}")).status_code == 404
    dup = await client.post("/api/v1/items", json={**draft, "code": code}, headers=admin)
    assert problem(dup)["code"] == "item_exists"
    published = await client.post(f"/api/v1/items/{code}/publish", headers=admin)
    assert published.json()["version"] == 1
    assert (
        problem(await client.post(f"/api/v1/items/{code}/publish", headers=admin))["code"]
        == "no_draft_to_publish"
    )

    # an application submitted under version 1 keeps it when version 2 is published
    applicant = tokens.enterprise(random_uscc())
    submitted = (
        await client.post(
            "/api/v1/applications",
            json={"item_code": code, "applicant_name": "某某公司"},
            headers=applicant,
        )
    ).json()
    revised = copy.deepcopy(draft)
    revised["committed_limit_days"] = 5
    revised["guide"]["fees"] = "按规定收费"
    revised["change_note"] = "压缩承诺时限"
    assert (await client.put(f"/api/v1/items/{code}/draft", json=revised, headers=admin)).json()[
        "version"
    ] == 2
    assert (await client.get(f"/api/v1/items/{code}")).json()["version"] == 1
    # A draft is not public until published: the public history and version stop at version 1,
    # and do not say which admin account wrote what; an admin's token sees both.
    public = (await client.get(f"/api/v1/items/{code}/versions")).json()
    assert [(v["version"], v["status"], v["created_by"]) for v in public] == [
        (1, "published", None)
    ]
    assert (await client.get(f"/api/v1/items/{code}/versions/2")).status_code == 404
    staff = (await client.get(f"/api/v1/items/{code}/versions", headers=admin)).json()
    assert [(v["version"], v["status"]) for v in staff] == [(1, "published"), (2, "draft")]
    assert all(v["created_by"] for v in staff)
    seen = await client.get(f"/api/v1/items/{code}/versions/2", headers=admin)
    assert seen.json()["committed_limit_days"] == 5
    await client.post(f"/api/v1/items/{code}/publish", headers=admin)
    current = (await client.get(f"/api/v1/items/{code}")).json()
    assert current["version"] == 2 and current["committed_limit_days"] == 5
    history = (await client.get(f"/api/v1/items/{code}/versions")).json()
    assert [(v["version"], v["status"]) for v in history] == [(1, "superseded"), (2, "published")]
    application = (
        await client.get(f"/api/v1/applications/{submitted['id']}", headers=applicant)
    ).json()
    assert application["item_version"] == 1
    old = (await client.get(f"/api/v1/items/{code}/versions/1")).json()
    assert (
        old["guide"]["fees"] == draft["guide"]["fees"]
        and old["committed_limit_days"] == draft["committed_limit_days"]
    )
    assert (await client.get(f"/api/v1/items/{code}/versions/9")).status_code == 404

    bad = {**draft, "guide": {**draft["guide"], "legal_basis": []}}
    rejected = await client.put(f"/api/v1/items/{code}/draft", json=bad, headers=admin)
    assert problem(rejected)["code"] == "validation_failed"


def test_approval_and_license_give_one_reform_mode_for_every_demo_item() -> None:
    """The demo catalogue's mode of each item (a bundle's filing included) is license's mode in
    force for the item's jurisdiction, and the tests' license stand-in answers the same."""
    versions = shipped_catalogue()["versions"]
    today = china_today().isoformat()
    for item in demo_items():
        chain = ancestors(item.jurisdiction)
        candidates = [
            v
            for v in versions
            if v["item_code"] == item.code
            and v["jurisdiction"] in chain
            and v["effective_from"] <= today
        ]
        # license's rule: the jurisdiction's own version first, then the latest in force
        in_force = max(
            candidates,
            key=lambda v: (-chain.index(v["jurisdiction"]), v["effective_from"], v["version"]),
        )
        assert item.reform_mode == in_force["mode"], item.code
        assert REFORM_MODES.get(item.code, ReformMode.OPTIMIZED) == in_force["mode"], item.code
    bundled = {i.item_code for b in demo_bundles() for i in b.definition.items}
    assert any(REFORM_MODES.get(code) is ReformMode.FILING for code in bundled)
