"""Need to know: a licence's details are read by its holder and the staff of its jurisdiction only,
and the public verification tells a wrong copy "forged" and nothing of the register's licence."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc

Issue = Callable[..., Awaitable[str]]
HOLDER = "上海临港保密示范有限公司"


async def test_staff_read_licence_details_only_within_their_jurisdiction(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    pudong = await issue(
        uscc=uscc, item_code="JXW-XK-001", jurisdiction="310115", applicant_name=HOLDER
    )
    city = await issue(uscc=random_uscc(), applicant_name=HOLDER)

    async def read(licence_no: str, headers: dict[str, str]) -> dict[str, int]:
        detail = await client.get(f"/api/v1/licences/{licence_no}", headers=headers)
        pdf = await client.get(f"/api/v1/licences/{licence_no}/pdf", headers=headers)
        if detail.status_code == 404:
            assert problem(detail)["code"] == "licence_not_found"
            assert HOLDER not in detail.text and uscc not in detail.text
        return {"detail": detail.status_code, "pdf": pdf.status_code}

    allowed, hidden = {"detail": 200, "pdf": 200}, {"detail": 404, "pdf": 404}
    # Another district's staff: as if it did not exist.
    for role in (Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER, Role.HEAD):
        assert await read(pudong, tokens.staff(role, "310118")) == hidden
    # A district's staff see their district's licences, not the city's.
    assert await read(pudong, tokens.staff(Role.REVIEWER, "310115")) == allowed
    assert await read(city, tokens.staff(Role.REVIEWER, "310115")) == hidden
    # The city's staff see the city's and its districts'.
    assert await read(pudong, tokens.staff(Role.REVIEWER, "310000")) == allowed
    assert await read(city, tokens.staff(Role.REVIEWER, "310000")) == allowed
    # The holder, admins and services as before; another enterprise never.
    assert await read(pudong, tokens.enterprise(uscc)) == allowed
    assert await read(pudong, tokens.header(Role.ADMIN)) == allowed
    assert await read(pudong, tokens.service()) == allowed
    assert await read(pudong, tokens.enterprise(random_uscc())) == hidden

    # Acting outside the jurisdiction stays a 403 (the authorisation matrix is unchanged).
    elsewhere = await client.post(
        f"/api/v1/licences/{pudong}/suspension",
        json={"reason": "越权暂停"},
        headers=tokens.staff(Role.APPROVER, "310118"),
    )
    assert elsewhere.status_code == 403
    assert problem(elsewhere)["code"] == "outside_jurisdiction"


async def test_a_wrong_hash_learns_nothing_of_the_registered_licence(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc, applicant_name=HOLDER)
    register_facts = (
        "version",
        "is_latest_version",
        "latest_version",
        "licence_type_name",
        "holder_name",
        "holder_uscc",
        "issuing_authority",
        "issued_on",
        "valid_from",
        "valid_until",
        "status",
        "status_label",
        "seal_id",
        "seal_authority",
        "signed_at",
    )
    for guess in (
        {"hash": "a" * 64},
        {"digest": "b" * 64},
        {"sha256": "c" * 64},
        {"version": "1", "digest": "d" * 64},
    ):
        answer = await client.get(
            "/api/v1/licences/verify", params={"licence_no": licence_no, **guess}
        )
        assert answer.status_code == 200
        body = answer.json()
        assert body["result"] == "forged" and body["genuine"] is False, body
        leaked = {k: body[k] for k in register_facts if body.get(k) is not None}
        # The version is the caller's own when they gave one, never the register's otherwise.
        assert leaked == ({"version": 1} if "version" in guess else {}), body
        assert HOLDER not in answer.text and uscc not in answer.text

    page = await client.get(
        "/licences/verify", params={"licence_no": licence_no, "digest": "e" * 64}
    )
    assert page.status_code == 200 and 'data-genuine="false"' in page.text
    assert HOLDER not in page.text and uscc not in page.text
