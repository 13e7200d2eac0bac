"""The relay posts license's events to notify and approval, as CloudEvents batches with a token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from govshared.auth import Role, load_verifier
from govshared.events import CLOUDEVENTS_BATCH_JSON, EventType, LicenceEventData
from govshared.testing import Tokens, random_uscc
from licensing.config import Settings
from licensing.main import create_app
from licensing.worker import build_outbox

Issuer = Callable[..., Callable[..., Awaitable[str]]]


def _recorder(received: list[tuple[str, str, list[dict[str, Any]]]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["content-type"] == CLOUDEVENTS_BATCH_JSON
        received.append(
            (request.url.host, request.headers["authorization"], json.loads(request.content))
        )
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler)


async def test_embedded_relay_delivers_issuance_to_notify_and_approval(
    settings_factory: Callable[..., Settings], tokens: Tokens, issuer: Issuer
) -> None:
    received: list[tuple[str, str, list[dict[str, Any]]]] = []
    settings = settings_factory(
        run_workers=True,
        load_demo_catalogue=True,
        notify_events_url="http://notify.test/api/v1/events",
        approval_url="http://approval.test",
        relay_poll_seconds=0.05,
    )
    transport = _recorder(received)
    app = create_app(
        settings, http_mounts={"http://notify.test": transport, "http://approval.test": transport}
    )
    uscc = random_uscc()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://license.test"
        ) as client,
    ):
        licence_no = await issuer(client, tokens)(uscc=uscc)

        def delivered_to() -> set[str]:
            return {
                host
                for host, _, batch in received
                for event in batch
                if event["subject"] == licence_no
            }

        for _ in range(200):
            if delivered_to() == {"notify.test", "approval.test"}:
                break
            await asyncio.sleep(0.05)
        assert delivered_to() == {"notify.test", "approval.test"}
    events = [e for _, _, batch in received for e in batch if e["subject"] == licence_no]
    assert {e["type"] for e in events} == {EventType.LICENCE_ISSUED.value}
    data = LicenceEventData.model_validate(events[0]["data"])
    assert data.holder_uscc == uscc and data.status == "valid"
    # The relay presents a service token of its own, for the service it posts to (its aud).
    for host, authorization, _ in received:
        destination = host.split(".")[0]
        verifier = load_verifier(
            public_key_file=None,
            jwks_file=None,
            jwks_url=None,
            issuer=None,
            audience=None,
            service_keys_file=tokens.service_public_key_file,
            service=destination,
        )
        principal = verifier.verify(authorization.removeprefix("Bearer "))
        assert (principal.role, principal.subject) == (Role.SERVICE, "service:license")


def test_approval_is_subscribed_only_when_it_has_a_url(
    settings_factory: Callable[..., Settings],
) -> None:
    issued = EventType.LICENCE_ISSUED.value
    with_url = build_outbox(settings_factory(approval_url="http://approval.test"))
    without = build_outbox(settings_factory(approval_url=""))
    assert sorted(with_url.destinations(issued)) == ["approval", "notify"]
    assert without.destinations(issued) == ["notify"]
    assert with_url.destinations(EventType.LICENCE_REVOKED.value) == ["notify"]
