"""Need to know: the public document check tells a wrong copy "not genuine" and nothing else."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from fastapi import FastAPI

from approval.catalogue.demo import required_materials
from approval.context import context_of
from govshared.auth import Role
from govshared.testing import Tokens, random_uscc

APPLICANT = "上海无线保密示范有限公司"
# What a verifier who holds only a number and a guess must not learn.
DOCUMENT_FACTS = (
    "title",
    "application_no",
    "applicant_name",
    "item_name",
    "issued_on",
    "authority",
    "seal_id",
    "signed_at",
    "status",
    "still_valid",
)


async def accepted_notice(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> Any:
    """An accepted application's sealed 受理通知书 (as its applicant lists it)."""
    uscc = random_uscc()
    applicant = tokens.enterprise(uscc, name=APPLICANT)
    created = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-XK-003",
            "applicant_name": APPLICANT,
            "form": {"station_type": "固定台站"},
        },
        headers=applicant,
    )
    assert created.status_code == 201, created.text
    base = f"/api/v1/applications/{created.json()['id']}"
    # 容缺受理: the materials this test does not upload are named with a date to deliver them.
    tolerate = {"tolerated_materials": required_materials("JXW-XK-003"), "deliver_by": "2099-12-31"}
    accepted = await client.post(
        f"{base}/accept", json=tolerate, headers=tokens.staff(Role.ACCEPTOR)
    )
    assert accepted.status_code == 200, accepted.text
    await context_of(app).sealer.run_once()
    [notice] = (await client.get(f"{base}/documents", headers=applicant)).json()["items"]
    pdf = await client.get(f"{base}/documents/{notice['id']}/pdf", headers=applicant)
    return notice, pdf.content


def learned(answer: dict[str, Any]) -> dict[str, Any]:
    """The facts about the document that an answer gives away."""
    return {k: answer.get(k) for k in DOCUMENT_FACTS if answer.get(k) is not None}


async def test_a_wrong_hash_is_not_genuine_and_nothing_else(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    notice, pdf = await accepted_notice(client, tokens, app)
    number = notice["number"]
    genuine = (
        await client.get(
            "/api/v1/documents/verify",
            params={"number": number, "sha256": hashlib.sha256(pdf).hexdigest()},
        )
    ).json()
    assert genuine["genuine"] is True and genuine["applicant_name"] == APPLICANT

    for guess in (
        {"sha256": "a" * 64},
        {"digest": "b" * 64},
        {"sha256": "c" * 64, "digest": "d" * 64},
    ):
        answer = await client.get("/api/v1/documents/verify", params={"number": number, **guess})
        assert answer.status_code == 200
        body = answer.json()
        assert body["genuine"] is False and body["verdict"]
        assert learned(body) == {}, body
        assert APPLICANT not in answer.text and notice["title"] not in answer.text

    page = await client.get("/verify", params={"number": number, "sha256": "a" * 64})
    assert page.status_code == 200 and 'data-genuine="false"' in page.text
    assert APPLICANT not in page.text and "JXW-XK-003" not in page.text
    assert "无线电台" not in page.text
