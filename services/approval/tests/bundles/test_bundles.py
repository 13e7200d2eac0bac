"""一件事一次办 through the REST API: a bundle fans out, one item is refused, one combined result."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import date

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from approval.context import context_of
from approval.db import outbox_events
from approval.models import Material
from govshared.auth import Role
from govshared.testing import Tokens, blank_pdf, problem, random_uscc

BUNDLE = "YJS-YY-001"
FORM = {"warehouse_address": "上海市浦东新区申江路1号", "warehouse_area": 1200}


@pytest.fixture
def set_today(app: FastAPI) -> Iterator[Callable[[str], None]]:
    """Set the service's China date; restored after the test."""
    today = context_of(app).today

    def setter(day: str) -> None:
        today.pin(date.fromisoformat(day))

    yield setter
    today.pin(None)


async def _apply(
    client: httpx.AsyncClient, tokens: Tokens, uscc: str, key: str | None = None, **body: object
) -> httpx.Response:
    headers = {**tokens.enterprise(uscc), **({"Idempotency-Key": key} if key else {})}
    payload = {
        "bundle_code": BUNDLE,
        "applicant_name": "上海盐业示范有限公司",
        "form": FORM,
        **body,
    }
    return await client.post("/api/v1/bundle-applications", json=payload, headers=headers)


async def _own_applications(client: httpx.AsyncClient, tokens: Tokens, uscc: str) -> list[str]:
    listed = await client.get("/api/v1/applications", headers=tokens.enterprise(uscc))
    return [a["item_code"] for a in listed.json()["items"]]


async def _decide(
    client: httpx.AsyncClient, tokens: Tokens, app_id: str, item_code: str, decision: str
) -> None:
    checklist = await client.get(
        f"/api/v1/applications/{app_id}/materials", headers=tokens.staff(Role.ACCEPTOR)
    )
    missing = checklist.json()["missing_required"]
    assert "营业执照" not in missing  # uploaded once for the whole bundle
    steps = [
        (
            "accept",
            Role.ACCEPTOR,
            {"tolerated_materials": missing, "deliver_by": "2099-12-31"},
        ),
        ("review", Role.REVIEWER, {"opinion": "已审查"}),
        (
            decision,
            Role.APPROVER,
            {"opinion": "决定", "reason": "仓储设施不符合食盐储存条件"}
            if decision == "deny"
            else {"opinion": "准予许可"},
        ),
    ]
    for path, role, body in steps:
        response = await client.post(
            f"/api/v1/applications/{app_id}/{path}", json=body, headers=tokens.staff(role)
        )
        assert response.status_code == 200, response.text


async def test_the_catalogue_publishes_bundles_like_items(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    listed = (await client.get("/api/v1/bundles")).json()
    assert BUNDLE in [b["code"] for b in listed["items"]] and "next_cursor" in listed
    bundle = (await client.get(f"/api/v1/bundles/{BUNDLE}")).json()
    assert bundle["name"] == "开办食盐定点生产批发企业"
    assert [i["item_code"] for i in bundle["definition"]["items"]] == ["JXW-XK-001", "JXW-XK-002"]
    assert (await client.get("/api/v1/bundles/NOPE-1")).status_code == 404
    admin = tokens.staff(Role.ADMIN)
    definition = {
        "description": "无线电台（站）设置与频率使用一次申请",
        "items": [{"item_code": "JXW-XK-003"}, {"item_code": "JXW-XK-013"}],
        "form_fields": [
            {
                "name": "station_type",
                "label": "台站类型",
                "maps_to": [{"item_code": "JXW-XK-003", "field": "station_type"}],
            }
        ],
    }
    code = f"YJS-T-{random_uscc()[-6:]}"
    # a mapping to a field the item's guide does not have is refused
    wrong = {
        **definition,
        "form_fields": [
            {**definition["form_fields"][0], "maps_to": [{"item_code": "JXW-XK-013", "field": "x"}]}
        ],
    }
    refused = await client.post(
        "/api/v1/bundles",
        json={
            "code": code,
            "name": "开办无线电台站",
            "jurisdiction": "310000",
            "definition": wrong,
        },
        headers=admin,
    )
    assert problem(refused)["code"] == "bundle_definition_invalid"
    body = {
        "code": code,
        "name": "开办无线电台站",
        "jurisdiction": "310000",
        "definition": definition,
    }
    assert (
        await client.post("/api/v1/bundles", json=body, headers=tokens.enterprise(random_uscc()))
    ).status_code == 403
    draft = await client.post("/api/v1/bundles", json=body, headers=admin)
    assert draft.status_code == 201 and draft.json()["status"] == "draft"
    assert (await client.get(f"/api/v1/bundles/{code}")).status_code == 404  # not in force yet
    published = await client.post(f"/api/v1/bundles/{code}/publish", headers=admin)
    assert published.status_code == 200 and published.json()["version"] == 1
    revised = await client.put(
        f"/api/v1/bundles/{code}/draft",
        json={k: v for k, v in body.items() if k != "code"} | {"change_note": "修订"},
        headers=admin,
    )
    assert revised.json()["version"] == 2 and revised.json()["status"] == "draft"
    history = (await client.get(f"/api/v1/bundles/{code}/versions", headers=admin)).json()
    assert [(v["version"], v["status"]) for v in history] == [(1, "published"), (2, "draft")]
    # The public sees what was published, not the draft nor who wrote it.
    public = (await client.get(f"/api/v1/bundles/{code}/versions")).json()
    assert [(v["version"], v["created_by"]) for v in public] == [(1, None)]
    assert (await client.get(f"/api/v1/bundles/{code}/versions/2")).status_code == 404


async def test_a_bundle_fans_out_one_item_is_refused_one_combined_result(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, session: AsyncSession
) -> None:
    uscc = random_uscc()
    first = await _apply(client, tokens, uscc, key="bundle-1")
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["status"] == "in_progress" and created["progress"] == {"decided": 0, "total": 2}
    again = await _apply(client, tokens, uscc, key="bundle-1")
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == created
    # the key names that request: another form with it is refused, nothing written
    other = await _apply(client, tokens, uscc, key="bundle-1", form={**FORM, "warehouse_area": 9})
    assert problem(other)["code"] == "idempotency_key_reused"
    # one ordinary application per item, each with its own clock and its own form
    members = {m["item_code"]: m for m in created["items"]}
    assert sorted(await _own_applications(client, tokens, uscc)) == ["JXW-XK-001", "JXW-XK-002"]
    applicant = tokens.enterprise(uscc)
    for code, member in members.items():
        clocks = await client.get(
            f"/api/v1/applications/{member['application_id']}/clocks", headers=applicant
        )
        assert clocks.status_code == 200 and clocks.json(), clocks.text
    wholesale = (
        await client.get(
            f"/api/v1/applications/{members['JXW-XK-002']['application_id']}", headers=applicant
        )
    ).json()
    assert wholesale["form"] == FORM
    assert members["JXW-XK-001"]["jurisdiction"] == "310115"  # delegated to 浦东新区

    # the business licence is uploaded once and shared by both items: one blob, two records
    pdf = blank_pdf()
    shared = await client.post(
        f"/api/v1/bundle-applications/{created['id']}/materials",
        data={"name": "营业执照"},
        files={"file": ("营业执照.pdf", pdf, "application/pdf")},
        headers=applicant,
    )
    assert shared.status_code == 201, shared.text
    assert sorted(m["item_code"] for m in shared.json()["materials"]) == [
        "JXW-XK-001",
        "JXW-XK-002",
    ]
    keys = (
        await session.scalars(
            select(Material.storage_key).where(
                Material.id.in_([uuid.UUID(m["material_id"]) for m in shared.json()["materials"]])
            )
        )
    ).all()
    assert len(keys) == 2 and len(set(keys)) == 1
    await session.rollback()  # end this read: the later one must see what is written meanwhile
    for member in members.values():
        content = await client.get(
            f"/api/v1/applications/{member['application_id']}/materials", headers=applicant
        )
        names = [m["name"] for m in content.json()["materials"]]
        assert names == ["营业执照"]
    other = await client.post(
        f"/api/v1/bundle-applications/{created['id']}/materials",
        data={"name": "营业执照"},
        files={"file": ("营业执照.pdf", pdf, "application/pdf")},
        headers=tokens.enterprise(random_uscc()),
    )
    assert other.status_code == 404

    await _decide(client, tokens, members["JXW-XK-001"]["application_id"], "JXW-XK-001", "approve")
    url = f"/api/v1/bundle-applications/{created['id']}"
    halfway = (await client.get(url, headers=applicant)).json()
    assert halfway["status"] == "in_progress" and halfway["progress"]["decided"] == 1
    await _decide(client, tokens, members["JXW-XK-002"]["application_id"], "JXW-XK-002", "deny")

    result = (await client.get(url, headers=applicant)).json()
    assert result["status"] == "decided" and result["outcome"] == "partially_approved"
    refused = next(i for i in result["items"] if i["item_code"] == "JXW-XK-002")
    assert refused["state"] == "denied" and refused["reason"] == "仓储设施不符合食盐储存条件"
    assert "仓储设施不符合食盐储存条件" in result["summary"]
    # only the applicant and the staff of its items' jurisdictions see it
    assert (await client.get(url, headers=tokens.enterprise(random_uscc()))).status_code == 404
    assert (await client.get(url, headers=tokens.staff(Role.ACCEPTOR, "320000"))).status_code == 404
    assert (await client.get(url, headers=tokens.staff(Role.ACCEPTOR, "310115"))).status_code == 200
    listed = (await client.get("/api/v1/bundle-applications", headers=applicant)).json()
    assert [b["id"] for b in listed["items"]] == [created["id"]] and listed["next_cursor"] is None

    # one combined notice, once
    assert await context_of(app).timers.decide_bundles() >= 1
    assert await context_of(app).timers.decide_bundles() == 0
    payloads = (
        await session.scalars(
            select(outbox_events.c.payload).where(
                outbox_events.c.event_type == "cn.gov.approval.bundle.decided.v1",
                outbox_events.c.payload.contains(created["id"]),
            )
        )
    ).all()
    assert len(payloads) == 1
    data = json.loads(payloads[0])["data"]
    assert data["outcome"] == "partially_approved" and data["applicant_uscc"] == uscc


async def test_nothing_is_submitted_when_one_item_cannot_be(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    incomplete = await _apply(client, tokens, uscc, form={"warehouse_address": "上海市"})
    assert problem(incomplete)["code"] == "form_invalid"
    admin = tokens.staff(Role.ADMIN)
    code = f"YJS-C-{random_uscc()[-6:]}"
    definition = {
        "description": "含已直接取消审批的事项",
        "items": [{"item_code": "JXW-XK-005"}, {"item_code": "JXW-QX-008"}],
    }
    body = {
        "code": code,
        "name": "开办粮食化工企业",
        "jurisdiction": "310000",
        "definition": definition,
    }
    assert (await client.post("/api/v1/bundles", json=body, headers=admin)).status_code == 201
    assert (await client.post(f"/api/v1/bundles/{code}/publish", headers=admin)).status_code == 200
    refused = await _apply(client, tokens, uscc, bundle_code=code, form={})
    body = problem(refused)
    assert body["code"] == "bundle_item_not_submitted" and body["item_code"] == "JXW-QX-008"
    assert body["item_problem"]["code"] == "approval_cancelled"
    # the first item, prepared before the second failed, was not left behind
    assert await _own_applications(client, tokens, uscc) == []
    assert (
        await client.get("/api/v1/bundle-applications", headers=tokens.enterprise(uscc))
    ).json()["items"] == []


async def test_a_filing_in_a_bundle_is_filed_at_once_and_counts_in_the_combined_result(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # 开办监控化学品生产企业: a licence under review and a filing (审批改为备案, as license says)
    uscc = random_uscc()
    applicant = tokens.enterprise(uscc)
    created = await _apply(client, tokens, uscc, bundle_code="YJS-HX-001", form={})
    assert created.status_code == 201, created.text
    members = {m["item_code"]: m for m in created.json()["items"]}
    assert [m["item_code"] for m in created.json()["items"]] == ["JXW-XK-004", "JXW-BA-009"]
    filing = (
        await client.get(
            f"/api/v1/applications/{members['JXW-BA-009']['application_id']}", headers=applicant
        )
    ).json()
    assert filing["state"] == "filed" and filing["intake_route"] == "filing"
    assert filing["reform_mode"] == "approval_to_filing" and filing["receipt_no"]
    assert members["JXW-BA-009"]["due_on"] is None  # no acceptance clock: filed on receipt
    licence = (
        await client.get(
            f"/api/v1/applications/{members['JXW-XK-004']['application_id']}", headers=applicant
        )
    ).json()
    assert licence["state"] == "submitted" and licence["intake_route"] == "review"
    assert created.json()["progress"] == {"decided": 1, "total": 2}
    assert created.json()["status"] == "in_progress"

    await _decide(client, tokens, members["JXW-XK-004"]["application_id"], "JXW-XK-004", "approve")
    result = (
        await client.get(f"/api/v1/bundle-applications/{created.json()['id']}", headers=applicant)
    ).json()
    assert result["status"] == "decided" and result["outcome"] == "approved"
    assert [i["state"] for i in result["items"]] == ["approved", "filed"]
    assert result["summary"] == "全部事项已办结，均准予许可或完成备案"


async def test_a_shared_upload_is_refused_once_a_member_is_deemed_accepted(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Art. 32: past the five working days a member is accepted by law, whether or not the timer
    has recorded it; the bundle's shared upload refuses it as the item's own upload does."""
    uscc = random_uscc()
    applicant = tokens.enterprise(uscc)
    set_today("2021-09-17")  # acceptance due 2021-09-26 (a 调休 Sunday): 5 working days
    created = await _apply(client, tokens, uscc)
    assert created.status_code == 201, created.text
    bundle_id = created.json()["id"]
    members = [m["application_id"] for m in created.json()["items"]]
    pdf = blank_pdf()

    async def shared_upload() -> httpx.Response:
        return await client.post(
            f"/api/v1/bundle-applications/{bundle_id}/materials",
            data={"name": "营业执照"},
            files={"file": ("营业执照.pdf", pdf, "application/pdf")},
            headers=applicant,
        )

    async def materials(app_id: str) -> list[str]:
        response = await client.get(f"/api/v1/applications/{app_id}/materials", headers=applicant)
        return [m["id"] for m in response.json()["materials"]]

    set_today("2021-09-26")  # the last day is still the authority's: the upload is taken
    taken = await shared_upload()
    assert taken.status_code == 201, taken.text
    before = {app_id: await materials(app_id) for app_id in members}
    assert all(len(ids) == 1 for ids in before.values())

    set_today("2021-09-27")  # the 6th working day, no staff action, no timer run
    for app_id in members:
        state = (await client.get(f"/api/v1/applications/{app_id}", headers=applicant)).json()
        assert state["state"] == "accepted"
        single = await client.post(
            f"/api/v1/applications/{app_id}/materials",
            data={"name": "营业执照"},
            files={"file": ("营业执照.pdf", pdf, "application/pdf")},
            headers=applicant,
        )
        assert (single.status_code, problem(single)["code"]) == (409, "illegal_transition")
    refused = await shared_upload()
    assert refused.status_code == 409, refused.text
    body = problem(refused)
    assert (body["code"], body["current_state"]) == ("illegal_transition", "accepted")
    assert {app_id: await materials(app_id) for app_id in members} == before  # nothing recorded
