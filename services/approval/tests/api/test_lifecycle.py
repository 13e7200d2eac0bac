"""An application's life from submission to decision, through the REST API."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from approval.catalogue.demo import required_materials
from approval.models import ApplicationEvent
from approval.signing.config import dev_ca_directory
from govshared.auth import Role
from govshared.signing.phone import sign_for_application
from govshared.testing import Tokens, blank_pdf, problem, random_uscc

BODY = {
    "item_code": "JXW-XK-003",
    "applicant_name": "上海无线示范有限公司",
    "form": {"station_type": "固定台站"},
}
# 容缺受理 of every material the guide requires (these tests upload none).
TOLERATE = {"tolerated_materials": required_materials("JXW-XK-003"), "deliver_by": "2099-12-31"}


async def _submit(client: httpx.AsyncClient, tokens: Tokens, uscc: str, **extra: object) -> str:
    response = await client.post(
        "/api/v1/applications", json={**BODY, **extra}, headers=tokens.enterprise(uscc)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _act(
    client: httpx.AsyncClient, app_id: str, path: str, headers: dict[str, str], **body: object
) -> httpx.Response:
    return await client.post(f"/api/v1/applications/{app_id}/{path}", json=body, headers=headers)


async def test_accept_review_approve_with_audit_trail(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    app_id = await _submit(client, tokens, uscc)
    acceptor, reviewer = tokens.staff(Role.ACCEPTOR), tokens.staff(Role.REVIEWER)
    approver = tokens.staff(Role.APPROVER)
    assert (await _act(client, app_id, "accept", acceptor, **TOLERATE)).json()[
        "state"
    ] == "accepted"
    assert (await _act(client, app_id, "review", reviewer, opinion="材料齐全")).json()[
        "state"
    ] == "in_review"
    assert (await _act(client, app_id, "review", approver, opinion="复审同意")).json()[
        "state"
    ] == "in_review"
    approved = await _act(client, app_id, "approve", approver, opinion="准予许可")
    assert approved.status_code == 200 and approved.json()["state"] == "approved"

    trail = (
        await client.get(f"/api/v1/applications/{app_id}/events", headers=tokens.enterprise(uscc))
    ).json()
    assert [e["action"] for e in trail] == ["submit", "accept", "review", "review", "approve"]
    # The guide's 许可事项 fields travel with the approval to license, under their labels; the
    # antenna height left empty changes nothing.
    assert trail[-1]["details"]["particulars"] == {"台站类型": "固定台站"}
    assert [e["actor_role"] for e in trail][1:] == ["acceptor", "reviewer", "approver", "approver"]
    verified = await client.get(f"/api/v1/applications/{app_id}/events/verify", headers=acceptor)
    assert verified.json() == {"valid": True, "entries": 5, "first_broken_seq": None}


async def test_illegal_transitions_are_409_naming_the_state(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    uscc = random_uscc()
    app_id = await _submit(client, tokens, uscc)
    approver, acceptor = tokens.staff(Role.APPROVER), tokens.staff(Role.ACCEPTOR)
    early = await _act(client, app_id, "approve", approver)
    body = problem(early)
    assert early.status_code == 409 and body["code"] == "illegal_transition"
    assert body["current_state"] == "submitted"
    assert (await _act(client, app_id, "resume", approver)).status_code == 409
    assert (await _act(client, app_id, "supplement", tokens.enterprise(uscc))).status_code == 409
    # withdrawn is final (the withdrawal is signed on the applicant's phone)
    signed = await sign_for_application(
        client,
        headers=tokens.enterprise(uscc),
        uscc=uscc,
        applicant_name="上海无线示范有限公司",
        application_id=app_id,
        purpose="withdrawal",
        ca_directory=dev_ca_directory(app.state.settings.data_dir),
    )
    withdrawn = await _act(
        client,
        app_id,
        "withdraw",
        tokens.enterprise(uscc),
        reason="不再需要",
        signing_session=signed,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    for path, who in [("accept", acceptor), ("withdraw", tokens.enterprise(uscc))]:
        assert problem(await _act(client, app_id, path, who))["current_state"] == "withdrawn"


async def test_roles_and_jurisdiction_guard_every_action(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    app_id = await _submit(client, tokens, uscc)
    assert (
        problem(await _act(client, app_id, "accept", tokens.enterprise(uscc)))["code"]
        == "forbidden"
    )
    assert (await _act(client, app_id, "accept", tokens.staff(Role.REVIEWER))).status_code == 403
    # staff of another province do not even see it
    assert (
        await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR, "320000"))
    ).status_code == 404
    # another enterprise cannot withdraw it
    assert (
        await _act(client, app_id, "withdraw", tokens.enterprise(random_uscc()))
    ).status_code == 404
    assert (await client.post(f"/api/v1/applications/{app_id}/accept", json={})).status_code == 401


async def test_reject_needs_a_legal_reason(client: httpx.AsyncClient, tokens: Tokens) -> None:
    app_id = await _submit(client, tokens, random_uscc())
    acceptor = tokens.staff(Role.ACCEPTOR)
    assert problem(await _act(client, app_id, "reject", acceptor))["code"] == "action_input_invalid"
    rejected = await _act(
        client,
        app_id,
        "reject",
        acceptor,
        reject_reason="outside_jurisdiction",
        reason="属区级事权",
    )
    assert rejected.json()["state"] == "rejected"


async def test_supplement_is_asked_once_listing_everything(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    app_id = await _submit(client, tokens, uscc)
    acceptor, applicant = tokens.staff(Role.ACCEPTOR), tokens.enterprise(uscc)
    assert (
        problem(await _act(client, app_id, "supplement-request", acceptor, missing_items=[]))[
            "status"
        ]
        == 422
    )
    first = await _act(
        client,
        app_id,
        "supplement-request",
        acceptor,
        missing_items=["设备型号核准证明", "技术方案"],
    )
    assert first.json()["state"] == "supplement_requested"
    supplemented = await _act(
        client,
        app_id,
        "supplement",
        applicant,
        changed_materials=["技术方案"],
        form={"antenna_height": "30m"},
    )
    assert supplemented.json()["state"] == "submitted"
    assert supplemented.json()["form"]["antenna_height"] == "30m"
    # a new item that could have been asked the first time is refused ...
    added = await _act(
        client, app_id, "supplement-request", acceptor, missing_items=["技术方案", "营业执照"]
    )
    body = problem(added)
    assert body["code"] == "supplement_items_not_in_first_request"
    assert body["added_items"] == ["营业执照"]
    # ... but asking again about material the applicant changed is allowed
    again = await _act(client, app_id, "supplement-request", acceptor, missing_items=["技术方案"])
    assert again.status_code == 200


async def test_pause_extend_and_decide(client: httpx.AsyncClient, tokens: Tokens) -> None:
    app_id = await _submit(client, tokens, random_uscc())
    reviewer, head = tokens.staff(Role.REVIEWER), tokens.staff(Role.HEAD)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **TOLERATE)
    assert (
        problem(await _act(client, app_id, "pause", reviewer, pause_reason="lunch"))["status"]
        == 422
    )
    paused = await _act(
        client, app_id, "pause", reviewer, pause_reason="expert_review", expected_days=10
    )
    assert paused.json()["state"] == "paused"
    assert (
        await _act(client, app_id, "extend", reviewer, extension_days=5, reason="案情复杂")
    ).status_code == 403
    # Art. 42(1): at most ten working days, by the authority's head
    too_long = problem(await _act(client, app_id, "extend", head, extension_days=11, reason="复杂"))
    assert (too_long["status"], too_long["code"]) == (422, "extension_too_long")
    assert too_long["max_extension_days"] == 10
    never = await _act(client, app_id, "extend", head, extension_days=16, reason="案情复杂")
    assert problem(never)["code"] == "validation_failed"
    extended = await _act(client, app_id, "extend", head, extension_days=10, reason="案情复杂")
    assert extended.json()["state"] == "paused"
    twice = await _act(client, app_id, "extend", head, extension_days=1, reason="再延")
    assert problem(twice)["code"] == "already_extended"
    # resuming returns the case to the state it was paused from; a decision needs a review
    assert (await _act(client, app_id, "resume", reviewer)).json()["state"] == "accepted"
    await _act(client, app_id, "review", reviewer, opinion="频率冲突")
    assert (
        problem(await _act(client, app_id, "deny", tokens.staff(Role.APPROVER)))["code"]
        == "action_input_invalid"
    )
    denied = await _act(client, app_id, "deny", tokens.staff(Role.APPROVER), reason="频率已被占用")
    assert denied.json()["state"] == "denied"


async def test_instant_items_are_decided_on_the_spot(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    acceptor = tokens.staff(Role.ACCEPTOR)
    normal = await _submit(client, tokens, random_uscc())
    assert (
        problem(await _act(client, normal, "instant-decision", acceptor))["code"]
        == "not_instant_item"
    )
    uscc = random_uscc()
    instant = await _submit(client, tokens, uscc, item_code="JXW-CN-012")
    # Art. 34(2): decided on the spot only with the materials complete
    incomplete = problem(await _act(client, instant, "instant-decision", acceptor))
    assert incomplete["code"] == "materials_incomplete"
    for name in required_materials("JXW-CN-012"):
        uploaded = await client.post(
            f"/api/v1/applications/{instant}/materials",
            data={"name": name},
            files={"file": ("m.pdf", blank_pdf(), "application/pdf")},
            headers=tokens.enterprise(uscc),
        )
        assert uploaded.status_code == 201, uploaded.text
    decided = await _act(client, instant, "instant-decision", acceptor)
    assert decided.json()["state"] == "approved"


async def test_concurrent_decisions_exactly_one_wins(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    app_id = await _submit(client, tokens, random_uscc())
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **TOLERATE)
    await _act(client, app_id, "review", tokens.staff(Role.REVIEWER), opinion="符合条件")
    approver = tokens.staff(Role.APPROVER)
    results = await asyncio.gather(
        _act(client, app_id, "approve", approver),
        _act(client, app_id, "deny", approver, reason="不符合条件"),
        _act(client, app_id, "approve", approver),
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409], [r.text for r in results]
    trail = (await client.get(f"/api/v1/applications/{app_id}/events", headers=approver)).json()
    assert sum(e["action"] in ("approve", "deny") for e in trail) == 1


async def test_action_idempotency_key_replays(client: httpx.AsyncClient, tokens: Tokens) -> None:
    app_id = await _submit(client, tokens, random_uscc())
    headers = {**tokens.staff(Role.ACCEPTOR), "Idempotency-Key": f"accept-{app_id}"}
    first = await _act(client, app_id, "accept", headers, **TOLERATE)
    again = await _act(client, app_id, "accept", headers, **TOLERATE)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    trail = (await client.get(f"/api/v1/applications/{app_id}/events", headers=headers)).json()
    assert [e["action"] for e in trail] == ["submit", "accept"]


async def test_hash_chain_detects_an_edited_row(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    uscc = random_uscc()
    app_id = await _submit(client, tokens, uscc)
    acceptor = tokens.staff(Role.ACCEPTOR)
    await _act(client, app_id, "accept", acceptor, **TOLERATE)
    await _act(client, app_id, "review", tokens.staff(Role.REVIEWER), opinion="同意")
    async with app.state.sessionmaker() as s, s.begin():
        await s.execute(
            update(ApplicationEvent)
            .where(
                ApplicationEvent.application_id == __import__("uuid").UUID(app_id),
                ApplicationEvent.seq == 2,
            )
            .values(actor="someone-else")
        )
    verified = (
        await client.get(f"/api/v1/applications/{app_id}/events/verify", headers=acceptor)
    ).json()
    assert verified == {"valid": False, "entries": 3, "first_broken_seq": 2}
