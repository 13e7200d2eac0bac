"""The licence register: who reads what, verification, and the lifecycle through the API."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role
from govshared.contracts import LicenceSummary
from govshared.events import EventType, ReformMode
from govshared.testing import Tokens, problem, random_uscc
from licensing.context import context_of, get_context
from licensing.db import outbox_events

Issue = Callable[..., Awaitable[str]]
ServeNotice = Callable[..., Awaitable[dict[str, date]]]
ART_69_2 = "《中华人民共和国行政许可法》第六十九条第二款"
PENALTY = {
    "legal_basis": "《食盐专营办法》第二十九条",
    "reason": "违反食盐储存规定，责令停产整顿",
    "penalty_decision_no": "沪盐罚〔2026〕12号",
    "hearing": "waived",  # the notice's date comes from the register (serve_penalty_notice)
}


def qr_params(url: str) -> dict[str, str]:
    """The query a certificate's QR code carries to the verification."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_an_enterprise_reads_its_own_licences_only(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    mine, theirs = random_uscc(), random_uscc()
    my_licence = await issue(uscc=mine)
    their_licence = await issue(uscc=theirs, item_code="JXW-XK-001", jurisdiction="310115")

    own = await client.get(f"/api/v1/enterprises/{mine}/licences", headers=tokens.enterprise(mine))
    assert own.status_code == 200
    [summary] = [LicenceSummary.model_validate(i) for i in own.json()["items"]]
    assert summary.licence_no == my_licence and summary.holder_uscc == mine

    other = await client.get(
        f"/api/v1/enterprises/{theirs}/licences", headers=tokens.enterprise(mine)
    )
    assert other.status_code == 403
    assert problem(other)["code"] == "not_your_enterprise"
    hidden = await client.get(f"/api/v1/licences/{their_licence}", headers=tokens.enterprise(mine))
    assert hidden.status_code == 404
    assert problem(hidden)["code"] == "licence_not_found"
    detail = await client.get(f"/api/v1/licences/{my_licence}", headers=tokens.enterprise(mine))
    assert detail.status_code == 200
    assert detail.json()["history"][0]["action"] == "issued"


async def test_services_and_staff_check_licences_instead_of_paper(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    await issue(uscc=uscc)
    for headers in (tokens.service(), tokens.staff(Role.ACCEPTOR, "310115")):
        response = await client.get(f"/api/v1/enterprises/{uscc}/licences", headers=headers)
        assert response.status_code == 200
        assert len(response.json()["items"]) == 1
    anonymous = await client.get(f"/api/v1/enterprises/{uscc}/licences")
    assert anonymous.status_code == 401
    invalid = await client.get(
        "/api/v1/enterprises/91350100M000100Y4Z/licences", headers=tokens.service()
    )
    assert invalid.status_code == 422
    assert problem(invalid)["code"] == "invalid_uscc"


async def test_staff_register_is_limited_to_their_jurisdiction(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    pudong = await issue(uscc=random_uscc(), item_code="JXW-XK-001", jurisdiction="310115")
    city = await issue(uscc=random_uscc())

    async def register(headers: dict[str, str]) -> set[str]:
        numbers: set[str] = set()
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/licences", params=params, headers=headers)).json()
            numbers |= {i["licence_no"] for i in page["items"]}
            cursor = page["next_cursor"]
            if cursor is None:
                return numbers

    assert {pudong, city} <= await register(tokens.staff(Role.REVIEWER, "310000"))
    district = await register(tokens.staff(Role.REVIEWER, "310115"))
    assert pudong in district and city not in district
    denied = await client.get("/api/v1/licences", headers=tokens.enterprise(random_uscc()))
    assert denied.status_code == 403


async def test_verification_of_genuine_revoked_and_forged_licences(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc)
    detail = (
        await client.get(f"/api/v1/licences/{licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    qr = qr_params(detail["qr_url"])
    assert detail["qr_url"].startswith("http")
    assert qr == {
        "licence_no": licence_no,
        "version": "1",
        "digest": detail["certificate"]["content_digest"],
    }

    genuine = (await client.get("/api/v1/licences/verify", params=qr)).json()
    assert genuine["result"] == "valid" and genuine["genuine"] and genuine["valid_now"]
    assert genuine["holder_uscc"] == uscc and genuine["licence_no"] == licence_no
    # Only what the certificate shows: no application, no history, no internal ids.
    assert not {"id", "source_application_id", "history", "particulars", "jurisdiction"} & set(
        genuine
    )
    by_number = (
        await client.get(
            "/api/v1/licences/verify",
            params={"licence_no": licence_no, "hash": detail["content_hash"]},
        )
    ).json()
    assert by_number["result"] == "valid"

    # Forged: a QR code whose digest is not the sealed content's, a wrong hash.
    forged = (await client.get("/api/v1/licences/verify", params={**qr, "digest": "0" * 64})).json()
    assert forged["result"] == "forged" and not forged["genuine"]
    assert forged["failure"] == "digest_mismatch"
    wrong_hash = (
        await client.get(
            "/api/v1/licences/verify", params={"licence_no": licence_no, "hash": "a" * 64}
        )
    ).json()
    assert wrong_hash["result"] == "forged"
    unknown = (
        await client.get("/api/v1/licences/verify", params={"licence_no": "YDP-1999-999999"})
    ).json()
    assert unknown["result"] == "not_found" and not unknown["genuine"]

    revoked = await client.post(
        f"/api/v1/licences/{licence_no}/revocation",
        json={"legal_basis": ART_69_2, "reason": "以欺骗手段取得许可"},
        headers=tokens.staff(Role.APPROVER, "310000"),
    )
    assert revoked.status_code == 200, revoked.text
    after = (await client.get("/api/v1/licences/verify", params=qr)).json()
    assert after["result"] == "not_valid" and after["genuine"] and not after["valid_now"]
    assert after["status"] == "revoked" and after["status_label"] == "已撤销"
    assert "依法撤销（《行政许可法》第六十九条）" in after["message"] and "注销" in after["message"]

    neither = await client.get("/api/v1/licences/verify")
    assert neither.status_code == 422
    assert problem(neither)["code"] == "validation_failed"


async def test_art8_change_adds_a_version_and_supersedes_the_old_one(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue, app: FastAPI, session: AsyncSession
) -> None:
    # The authority's own change is lawful only under Art. 8, with its basis and compensation
    # (a holder's change is its application: test_events, Art. 49).
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc)
    before = (
        await client.get(f"/api/v1/licences/{licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    changed = await client.post(
        f"/api/v1/licences/{licence_no}/changes",
        json={
            "particulars": {"经营范围": "食盐批发（不含跨省）"},
            "reason": "依新修订的《食盐专营办法》调整许可范围",
            "legal_basis": "《食盐专营办法》（2017年修订）第十一条",
            "compensation_note": "对因变更造成的财产损失依法给予补偿，请于60日内提出",
        },
        headers=tokens.staff(Role.APPROVER, "310000"),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.json()["particulars"]["经营范围"] == "食盐批发（不含跨省）"
    await context_of(app).sealer.run_once()
    detail = (
        await client.get(f"/api/v1/licences/{licence_no}", headers=tokens.enterprise(uscc))
    ).json()
    assert [(v["version"], v["status"]) for v in detail["versions"]] == [
        (1, "superseded"),
        (2, "valid"),
    ]
    assert [h["action"] for h in detail["history"]] == ["issued", "superseded", "changed"]
    assert detail["history"][-1]["details"]["compensation_note"].startswith("对因变更")
    # The old certificate is genuine but no longer the valid one.
    old = (await client.get("/api/v1/licences/verify", params=qr_params(before["qr_url"]))).json()
    assert old["result"] == "not_valid" and old["status"] == "superseded"
    assert old["is_latest_version"] is False and old["latest_version"] == 2
    payloads = [
        json.loads(r.payload)
        for r in (
            await session.execute(
                select(outbox_events)
                .where(outbox_events.c.payload.contains(licence_no))
                .where(outbox_events.c.destination == "notify")
            )
        ).all()
    ]
    [changed_event] = [
        e
        for e in payloads
        if e["type"] == "cn.gov.license.licence.changed.v1" and e["data"]["document"]
    ]
    assert changed_event["data"]["legal_basis"] == "《食盐专营办法》（2017年修订）第十一条"
    assert changed_event["data"]["compensation_note"].startswith("对因变更")


async def test_suspension_and_reinstatement(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue, serve_penalty_notice: ServeNotice
) -> None:
    licence_no = await issue(uscc=random_uscc())
    await serve_penalty_notice(client, licence_no)
    approver = tokens.staff(Role.APPROVER, "310000")
    suspended = await client.post(
        f"/api/v1/licences/{licence_no}/suspension",
        json={**PENALTY, "suspended_until": "2099-06-30"},
        headers=approver,
    )
    assert suspended.json()["status"] == "suspended", suspended.text
    assert suspended.json()["act_details"]["penalty_decision_no"] == "沪盐罚〔2026〕12号"
    check = (await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})).json()
    assert check["result"] == "not_valid" and check["status_label"] == "暂扣"
    assert "被依法暂扣，暂扣期限至2099年6月30日" in check["message"]
    twice = await client.post(
        f"/api/v1/licences/{licence_no}/suspension", json=PENALTY, headers=approver
    )
    assert twice.status_code == 409
    assert problem(twice)["code"] == "licence_not_active"
    reinstated = await client.post(
        f"/api/v1/licences/{licence_no}/reinstatement",
        json={"reason": "整改完成"},
        headers=approver,
    )
    assert reinstated.json()["status"] == "valid"
    assert reinstated.json()["act_on"] is None


async def test_suspension_event_names_the_licence_type_for_people(
    client: httpx.AsyncClient,
    tokens: Tokens,
    issue: Issue,
    session: AsyncSession,
    serve_penalty_notice: ServeNotice,
) -> None:
    licence_no = await issue(uscc=random_uscc())
    await serve_penalty_notice(client, licence_no)
    suspended = await client.post(
        f"/api/v1/licences/{licence_no}/suspension",
        json={**PENALTY, "suspended_until": "2099-06-30"},
        headers=tokens.staff(Role.APPROVER, "310000"),
    )
    assert suspended.status_code == 200, suspended.text
    payloads = (
        await session.scalars(
            select(outbox_events.c.payload).where(outbox_events.c.payload.contains(licence_no))
        )
    ).all()
    [data] = [
        event["data"]
        for event in map(json.loads, payloads)
        if event["type"] == EventType.LICENCE_SUSPENDED
    ]
    assert data["licence_type"] == "salt_wholesale_certificate"
    assert data["licence_type_name"] == "食盐定点批发企业证书"


async def test_lifecycle_actions_need_a_decider_of_the_jurisdiction(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc, item_code="JXW-XK-001", jurisdiction="310115")
    body = {"legal_basis": ART_69_2, "reason": "测试撤销"}
    url = f"/api/v1/licences/{licence_no}/revocation"
    holder = await client.post(url, json=body, headers=tokens.enterprise(uscc))
    assert holder.status_code == 403 and problem(holder)["code"] == "forbidden"
    acceptor = await client.post(url, json=body, headers=tokens.staff(Role.ACCEPTOR, "310115"))
    assert acceptor.status_code == 403
    elsewhere = await client.post(url, json=body, headers=tokens.staff(Role.APPROVER, "310118"))
    assert elsewhere.status_code == 403
    assert problem(elsewhere)["code"] == "outside_jurisdiction"
    short = await client.post(
        url,
        json={"legal_basis": ART_69_2, "reason": ""},
        headers=tokens.staff(Role.APPROVER, "310115"),
    )
    assert short.status_code == 422
    city = await client.post(url, json=body, headers=tokens.staff(Role.HEAD, "310000"))
    assert city.status_code == 200
    missing = await client.post(
        "/api/v1/licences/NOPE-1/revocation", json=body, headers=tokens.staff(Role.HEAD, "310000")
    )
    assert missing.status_code == 404


async def test_false_commitment_revokes_and_bars_the_commitment_route(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue, session: AsyncSession
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc, item_code="JXW-CN-012", reform_mode=ReformMode.COMMITMENT)
    service = tokens.service("approval")
    eligibility = await client.get(
        f"/api/v1/enterprises/{uscc}/commitment-eligibility", headers=service
    )
    assert eligibility.json()["eligible"] is True

    reviewer = tokens.staff(Role.REVIEWER, "310000")
    tasks = (
        await client.get("/api/v1/verification-tasks", params={"limit": 100}, headers=reviewer)
    ).json()
    [task] = [t for t in tasks["items"] if t["licence_no"] == licence_no]
    elsewhere = await client.post(
        f"/api/v1/verification-tasks/{task['id']}/result",
        json={"outcome": "false_commitment", "findings": "现场无生产设备"},
        headers=tokens.staff(Role.REVIEWER, "310118"),
    )
    assert elsewhere.status_code == 403
    finding = {"outcome": "false_commitment", "findings": "现场核查发现企业承诺的检验能力并不存在"}
    # 撤销 is the authority's decision (Art. 69), as at /revocation: a reviewer who found the
    # commitment false hands the task to an approver; the licence and the route stand till then.
    by_reviewer = await client.post(
        f"/api/v1/verification-tasks/{task['id']}/result", json=finding, headers=reviewer
    )
    assert by_reviewer.status_code == 403
    assert problem(by_reviewer)["code"] == "revocation_needs_decider"
    unchanged = (
        await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
    ).json()
    assert unchanged["status"] == "valid"
    still = await client.get(f"/api/v1/enterprises/{uscc}/commitment-eligibility", headers=service)
    assert still.json()["eligible"] is True and still.json()["records"] == []
    decided = await client.post(
        f"/api/v1/verification-tasks/{task['id']}/result",
        json=finding,
        headers=tokens.staff(Role.APPROVER, "310000"),
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "failed"
    again = await client.post(
        f"/api/v1/verification-tasks/{task['id']}/result",
        json={"outcome": "passed", "findings": "改判"},
        headers=reviewer,
    )
    assert again.status_code == 409
    assert problem(again)["code"] == "verification_already_decided"

    verdict = (
        await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
    ).json()
    assert verdict["status"] == "revoked"
    barred = (
        await client.get(f"/api/v1/enterprises/{uscc}/commitment-eligibility", headers=service)
    ).json()
    assert barred["eligible"] is False
    assert barred["records"][0]["kind"] == "false_commitment"
    assert barred["records"][0]["licence_no"] == licence_no
    assert "虚假承诺" in barred["reasons"][0]
    # The enterprise's reform status no longer offers the commitment route.
    status = (
        await client.get(
            f"/api/v1/enterprises/{uscc}/reform-status", headers=tokens.enterprise(uscc)
        )
    ).json()
    assert status["commitment_eligible"] is False
    by_item = {i["item_code"]: i["status"] for i in status["items"]}
    assert by_item["JXW-CN-011"] == "requires_application"
    assert by_item["JXW-CN-012"] == "requires_application"
    types = {
        json.loads(r.payload)["type"]
        for r in (
            await session.execute(
                select(outbox_events).where(outbox_events.c.payload.contains(licence_no))
            )
        ).all()
    }
    assert "cn.gov.license.licence.revoked.v1" in types
    denied = await client.get(
        f"/api/v1/enterprises/{uscc}/commitment-eligibility", headers=tokens.enterprise(uscc)
    )
    assert denied.status_code == 403


async def test_serious_bad_credit_bars_the_commitment_route(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    recorded = await client.post(
        f"/api/v1/enterprises/{uscc}/credit-records",
        json={"reason": "列入严重失信主体名单"},
        headers=tokens.header(Role.ADMIN),
    )
    assert recorded.status_code == 201, recorded.text
    eligibility = (
        await client.get(
            f"/api/v1/enterprises/{uscc}/commitment-eligibility",
            headers=tokens.staff(Role.ACCEPTOR, "310115"),
        )
    ).json()
    assert eligibility["eligible"] is False
    assert "严重失信" in eligibility["reasons"][0]


async def test_reform_status_of_an_enterprise(
    client: httpx.AsyncClient,
    tokens: Tokens,
    issue: Issue,
    new_event: Callable[..., dict[str, Any]],
    deliver: Callable[..., Awaitable[httpx.Response]],
) -> None:
    uscc = random_uscc()
    await issue(uscc=uscc)
    pending = new_event(
        uscc=uscc,
        item_code="JXW-XK-003",
        event_type="cn.gov.approval.application.accepted.v1",
        state="accepted",
    )
    await deliver(pending)
    status = (
        await client.get(
            f"/api/v1/enterprises/{uscc}/reform-status", headers=tokens.enterprise(uscc)
        )
    ).json()
    by_item = {i["item_code"]: i for i in status["items"]}
    assert by_item["JXW-XK-002"]["status"] == "held"
    assert by_item["JXW-XK-002"]["licence_nos"]
    assert by_item["JXW-QX-008"]["status"] == "not_needed"
    assert by_item["JXW-XK-003"]["status"] == "pending"
    assert by_item["JXW-XK-003"]["pending_application_no"] == pending["data"]["application_no"]
    assert by_item["JXW-BA-009"]["status"] == "obtainable_by_filing"
    assert by_item["JXW-CN-011"]["status"] == "obtainable_by_commitment"
    assert by_item["JXW-XK-004"]["status"] == "requires_application"
    other = await client.get(
        f"/api/v1/enterprises/{uscc}/reform-status", headers=tokens.enterprise(random_uscc())
    )
    assert other.status_code == 403


class AlwaysDrawn(random.Random):
    """A draw that always falls on the licence (an on-site check), inspectors still at random."""

    def random(self) -> float:
        return 0.0

    def getrandbits(self, k: int, /) -> int:  # keeps sample() on the getrandbits path
        return super().getrandbits(k)


async def test_a_commitment_grant_drawn_for_an_on_site_check_names_two_inspectors(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    context = context_of(app)
    app.dependency_overrides[get_context] = lambda: replace(context, rng=AlwaysDrawn(7))
    try:
        uscc = random_uscc()
        licence_no = await issue(
            uscc=uscc, item_code="JXW-CN-012", reform_mode=ReformMode.COMMITMENT
        )
    finally:
        del app.dependency_overrides[get_context]
    tasks = (
        await client.get(
            "/api/v1/verification-tasks",
            params={"limit": 100},
            headers=tokens.staff(Role.REVIEWER, "310000"),
        )
    ).json()
    [task] = [t for t in tasks["items"] if t["licence_no"] == licence_no]
    assert task["method"] == "on_site" and task["drawn"] is True
    assert len(task["inspectors"]) == 2
    assert set(task["inspectors"]) <= set(context.settings.inspectors)
