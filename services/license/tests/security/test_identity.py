"""Issue 15, identity (license): keys bound to roles, jurisdiction claims validated."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from govshared.auth import DEFAULT_SERVICE_ISSUER, Role, mint_token
from govshared.jwks import audience_of_service
from govshared.testing import Tokens, problem, random_uscc


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_keys_sign_only_the_roles_they_are_trusted_for(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    path = f"/api/v1/enterprises/{uscc}/licences"
    idp = Path(tokens.private_key_file).read_text()
    services = Path(tokens.service_private_key_file).read_text()
    forged_service = mint_token(idp, role=Role.SERVICE, subject="service:approval")
    assert problem(await client.get(path, headers=bearer(forged_service)))["status"] == 401
    forged_staff = mint_token(
        services, role=Role.ACCEPTOR, jurisdiction="310000", issuer=DEFAULT_SERVICE_ISSUER
    )
    assert problem(await client.get(path, headers=bearer(forged_staff)))["status"] == 401
    # A service key with another issuer than the services' is refused too.
    wrong_issuer = mint_token(services, role=Role.SERVICE, issuer="https://idp.example")
    assert problem(await client.get(path, headers=bearer(wrong_issuer)))["status"] == 401
    for genuine in (tokens.service("approval"), tokens.staff(Role.ACCEPTOR, "310000")):
        assert (await client.get(path, headers=genuine)).status_code == 200


@pytest.mark.parametrize("jurisdiction", [310000, ["310000"], "0", "000000", "31%", "3101__"])
async def test_a_bad_jurisdiction_claim_is_401_not_500_nor_everywhere(
    client: httpx.AsyncClient, tokens: Tokens, jurisdiction: Any
) -> None:
    claims = {
        "sub": "s-1",
        "role": "reviewer",
        "jurisdiction": jurisdiction,
        "exp": int(time.time()) + 600,
    }
    token = jwt.encode(claims, Path(tokens.private_key_file).read_text(), algorithm="RS256")
    response = await client.get("/api/v1/verification-tasks", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert problem(response)["code"] == "unauthenticated"


async def test_a_malformed_token_is_a_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/verification-tasks",
        headers={"Authorization": "Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA"},
    )
    assert response.status_code == 401
    assert problem(response)["code"] == "unauthenticated"


async def test_a_service_posts_only_its_own_events(
    client: httpx.AsyncClient, tokens: Tokens, new_event: Any
) -> None:
    """Only approval's relay may tell license that approval decided: a notify or license token
    posting approval's ``approved`` event, or approval's token posting an event whose source is
    another service, is 403 and issues nothing."""
    uscc = random_uscc()
    approved = new_event(uscc=uscc)
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    licences = f"/api/v1/enterprises/{uscc}/licences"
    relabelled = {**approved, "source": "/services/notify"}
    for who, batch in (
        (tokens.service("notify"), [approved]),
        (tokens.service("license"), [approved]),
        # Not service:approval (for license's audience all the same).
        (
            tokens.header(
                Role.SERVICE, subject="approval", audience=[audience_of_service("license")]
            ),
            [approved],
        ),
        (tokens.service("notify"), [relabelled]),
        (tokens.service("approval"), [relabelled]),
    ):
        refused = await client.post(
            "/api/v1/events", content=json.dumps(batch), headers={**headers, **who}
        )
        assert refused.status_code == 403, refused.text
        assert problem(refused)["code"] == "event_producer_mismatch"
        assert (await client.get(licences, headers=tokens.service("approval"))).json()[
            "items"
        ] == []
    posted = await client.post(
        "/api/v1/events",
        content=json.dumps([approved]),
        headers={**headers, **tokens.service("approval")},
    )
    assert posted.status_code == 200 and posted.json()["processed"] == 1, posted.text
    assert (
        len((await client.get(licences, headers=tokens.service("approval"))).json()["items"]) == 1
    )
