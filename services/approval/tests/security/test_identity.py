"""Issue 15, identity: keys bound to roles, claims validated, idempotency keys scoped (approval)."""

from __future__ import annotations

import logging
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import Application
from approval.signing.config import dev_ca_directory
from govshared.auth import DEFAULT_SERVICE_ISSUER, Role, mint_token, service_tokens
from govshared.jurisdictions import scope_prefix
from govshared.signing.phone import sign_for_application
from govshared.testing import Tokens, blank_pdf, problem, random_uscc

BODY = {
    "item_code": "JXW-XK-002",
    "business_type": "new",
    "applicant_name": "上海盐业示范有限公司",
    "form": {"warehouse_address": "上海市浦东新区申江路1号", "warehouse_area": 1200},
}


def idp_key(tokens: Tokens) -> str:
    return Path(tokens.private_key_file).read_text()


def service_key(tokens: Tokens) -> str:
    return Path(tokens.service_private_key_file).read_text()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(key: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key, algorithm="RS256")


async def test_a_stolen_service_key_cannot_impersonate_an_enterprise_or_an_admin(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    as_enterprise = mint_token(
        service_key(tokens),
        role=Role.ENTERPRISE,
        uscc=uscc,
        subject=f"ent:{uscc}",
        issuer=DEFAULT_SERVICE_ISSUER,
    )
    refused = await client.get("/api/v1/applications", headers=bearer(as_enterprise))
    assert refused.status_code == 401
    assert problem(refused)["code"] == "unauthenticated"
    as_admin = mint_token(service_key(tokens), role=Role.ADMIN, issuer=DEFAULT_SERVICE_ISSUER)
    queue = await client.get("/api/v1/staff/applications", headers=bearer(as_admin))
    assert problem(queue)["status"] == 401
    # The identity provider's key still signs enterprises and staff.
    assert (
        await client.get("/api/v1/applications", headers=tokens.enterprise(uscc))
    ).status_code == 200


async def test_the_identity_providers_key_cannot_mint_a_service_token(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    forged = mint_token(idp_key(tokens), role=Role.SERVICE, subject="service:license")
    response = await client.get("/api/v1/staff/applications", headers=bearer(forged))
    assert problem(response)["status"] == 401
    # A service token from the services' key with the services' issuer is a service (which may
    # post its events; an event body that is not one is a 4xx of the consumer, not a 401).
    genuine = await client.post(
        "/api/v1/events",
        content=b"[]",
        headers={**tokens.service("license"), "content-type": "application/cloudevents-batch+json"},
    )
    assert genuine.status_code not in (401, 403), genuine.text
    # license → approval calls: the token source a service's settings describe signs with the
    # services' key and issuer, which every service trusts for role=service, for the service it
    # calls only: one license sent notify is refused here (it could be replayed otherwise).
    source = service_tokens(app.state.settings, service_name="license")
    principal = app.state.token_verifier.verify(source.token_for("approval"))
    assert principal.role is Role.SERVICE and principal.subject == "service:license"
    replayed = await client.get(
        "/api/v1/applications/" + str(uuid.uuid4()),
        headers=bearer(source.token_for("notify")),
    )
    assert problem(replayed)["status"] == 401


@pytest.mark.parametrize(
    "times",
    [
        {"exp": 1e300},
        {"exp": "9999999999"},
        {"nbf": "0"},
        # a lifetime beyond JWT_MAX_LIFETIME_SECONDS (12 h by default), in seconds from now
        {"exp": 30 * 24 * 3600},
        {"iat": -40 * 24 * 3600},
    ],
    ids=["exp-1e300", "exp-string", "nbf-string", "month", "iat-old"],
)
async def test_token_times_are_numbers_within_the_maximum_lifetime(
    client: httpx.AsyncClient, tokens: Tokens, times: dict[str, Any]
) -> None:
    uscc = random_uscc()
    now = int(time.time())
    claims: dict[str, Any] = {"sub": f"ent:{uscc}", "role": "enterprise", "uscc": uscc}
    claims["exp"] = now + 600
    for name, value in times.items():
        # Offsets in seconds are taken from now, at run time; other values are sent as they are.
        claims[name] = now + value if isinstance(value, int) else value
    response = await client.get(
        "/api/v1/applications", headers=bearer(signed(idp_key(tokens), claims))
    )
    assert response.status_code == 401, response.text
    assert problem(response)["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "authorization",
    [
        # ES256 header against the RSA key: the decoder raised TypeError, a 500 with a traceback.
        "Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
        "Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6ImEifQ.e30.AAAA",
    ],
)
async def test_malformed_tokens_are_401_problems_without_a_traceback(
    client: httpx.AsyncClient, authorization: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.get(
            "/api/v1/applications", headers={"Authorization": authorization}
        )
    assert response.status_code == 401
    assert problem(response)["code"] == "unauthenticated"
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a bad token"


@pytest.mark.parametrize(
    "jurisdiction",
    [310000, "0", "000000", "31%", "3_0000", "%", "310000%", "31000", "990000", "310115000"],
)
async def test_staff_jurisdiction_must_be_a_region_code(
    client: httpx.AsyncClient, tokens: Tokens, jurisdiction: Any
) -> None:
    claims: dict[str, Any] = {"sub": "s-1", "role": "acceptor", "exp": int(time.time()) + 600}
    claims["jurisdiction"] = jurisdiction
    response = await client.get(
        "/api/v1/staff/applications", headers=bearer(signed(idp_key(tokens), claims))
    )
    assert response.status_code == 401, response.text
    assert problem(response)["code"] == "unauthenticated"


async def test_a_township_code_sees_its_township_only(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # The queue's prefix of a township is the township (it was 3101150010: nothing at all).
    assert scope_prefix("310115001") == "310115001"
    assert scope_prefix("310000") == "31"
    uscc = random_uscc()
    created = await client.post("/api/v1/applications", json=BODY, headers=tokens.enterprise(uscc))
    assert created.status_code == 201
    assert created.json()["jurisdiction"] == "310000"
    city = await client.get(
        "/api/v1/staff/applications", params={"q": uscc}, headers=tokens.staff(Role.ACCEPTOR)
    )
    assert [a["id"] for a in city.json()["items"]] == [created.json()["id"]]
    # 310115001 (a township of 浦东新区) is a valid jurisdiction: accepted, and scoped to itself.
    township = await client.get(
        "/api/v1/staff/applications",
        params={"q": uscc},
        headers=tokens.staff(Role.ACCEPTOR, "310115001"),
    )
    assert township.status_code == 200
    assert township.json()["items"] == []
    detail = await client.get(
        f"/api/v1/applications/{created.json()['id']}",
        headers=tokens.staff(Role.ACCEPTOR, "310115001"),
    )
    assert detail.status_code == 404


async def test_one_agent_key_filing_for_two_enterprises_gets_two_applications(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    first, second = random_uscc(), random_uscc()
    key = f"agent-{uuid.uuid4()}"
    responses = []
    for uscc in (first, second):
        headers = {
            **tokens.header(Role.ENTERPRISE, uscc=uscc, subject="agent:张三"),
            "Idempotency-Key": key,
        }
        responses.append(await client.post("/api/v1/applications", json=BODY, headers=headers))
    assert [r.status_code for r in responses] == [201, 201]
    assert [r.json()["applicant_uscc"] for r in responses] == [first, second]
    assert responses[0].json()["id"] != responses[1].json()["id"]
    assert "idempotent-replayed" not in responses[1].headers
    stored = (
        await session.scalars(
            select(Application.applicant_uscc).where(
                Application.applicant_uscc.in_([first, second])
            )
        )
    ).all()
    await session.commit()
    assert sorted(stored) == sorted([first, second])
    # The same enterprise retrying still gets its first application back.
    again = await client.post(
        "/api/v1/applications",
        json=BODY,
        headers={
            **tokens.header(Role.ENTERPRISE, uscc=second, subject="agent:张三"),
            "Idempotency-Key": key,
        },
    )
    assert again.json()["id"] == responses[1].json()["id"]
    assert again.headers["idempotent-replayed"] == "true"


async def test_an_idempotency_key_is_scoped_to_its_route(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    uscc = random_uscc()
    key = f"k-{uuid.uuid4()}"
    headers = {**tokens.enterprise(uscc), "Idempotency-Key": key}
    created = await client.post("/api/v1/applications", json=BODY, headers=headers)
    assert created.status_code == 201
    # A withdrawal is signed on the applicant's phone (docs/signatures.md).
    signed = await sign_for_application(
        client,
        headers=tokens.enterprise(uscc),
        uscc=uscc,
        applicant_name=BODY["applicant_name"],
        application_id=created.json()["id"],
        purpose="withdrawal",
        ca_directory=dev_ca_directory(app.state.settings.data_dir),
    )
    withdrawn = await client.post(
        f"/api/v1/applications/{created.json()['id']}/withdraw",
        json={"reason": "不再需要", "signing_session": signed},
        headers=headers,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"


async def test_data_files_are_private(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    """Issue 15 point 12: the database file and stored materials are 0600 in 0700 folders."""
    uscc = random_uscc()
    created = await client.post("/api/v1/applications", json=BODY, headers=tokens.enterprise(uscc))
    pdf = blank_pdf()  # a real PDF: uploads are parsed as their type
    uploaded = await client.post(
        f"/api/v1/applications/{created.json()['id']}/materials",
        data={"name": "仓储设施证明材料"},
        files={"file": ("仓储证明.pdf", pdf, "application/pdf")},
        headers=tokens.enterprise(uscc),
    )
    assert uploaded.status_code == 201, uploaded.text
    root = Path(app.state.settings.data_dir) / "materials"
    stored = [p for p in root.rglob("*") if p.is_file() and p.read_bytes() == pdf]
    assert stored, "the material is on the filesystem backend"
    assert stat.S_IMODE(stored[0].stat().st_mode) == 0o600
    folder = stored[0].parent
    while folder != root.parent:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        folder = folder.parent
    url = app.state.settings.database_url
    if url.startswith("sqlite"):
        database = Path(url.split("///", 1)[1])
        assert stat.S_IMODE(database.stat().st_mode) == 0o600


async def test_no_service_reads_an_application(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """An application names the applicant and what it asked for: its applicant and the staff of
    its jurisdiction read it, no service (个人信息保护法 第六条). notify fetches only the sealed
    documents it delivers (tests/documents)."""
    uscc = random_uscc()
    created = await client.post("/api/v1/applications", json=BODY, headers=tokens.enterprise(uscc))
    assert created.status_code == 201, created.text
    case = f"/api/v1/applications/{created.json()['id']}"
    for path in (case, f"{case}/events", f"{case}/events/verify", f"{case}/clocks"):
        assert (await client.get(path, headers=tokens.enterprise(uscc))).status_code == 200, path
        assert (await client.get(path, headers=tokens.staff(Role.ACCEPTOR))).status_code == 200
        for service in ("license", "notify"):
            refused = await client.get(path, headers=tokens.service(service))
            assert problem(refused)["status"] == 403, (path, service)
