"""Webhooks cannot be aimed into the data centre (SSRF), by spelling, by DNS or by redirect."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi import FastAPI
from pydantic import ValidationError

import notify.channels.egress
from govshared.auth import Role
from govshared.events import EventType
from govshared.testing import Tokens, problem, random_uscc
from notify.channels.base import ChannelError, OutboundMessage
from notify.channels.egress import DestinationRefused, EgressPolicy
from notify.channels.webhook import WebhookSender
from notify.config import Settings
from notify.main import create_app
from notify.models import Channel

from ..conftest import Outside, application_event, drain, make_settings, post_events, replica

# Every spelling of an internal destination an HTTP client or a resolver accepts.
INTERNAL_HOSTS = [
    "127.0.0.1",
    "2130706433",  # 127.0.0.1 as one decimal number
    "127.1",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",  # octal
    "017700000001",
    "127.0.0.1.",
    "0.0.0.0",
    "0",
    "localhost",
    "localhost.",
    "LocalHost",
    "api.localhost",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "[::127.0.0.1]",  # IPv4-compatible
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[2002:a9fe:a9fe::]",  # 6to4 of 169.254.169.254
    "[fe80::1]",
    "[fc00::1]",
    "[fd00:ec2::254]",
    "[ff02::1]",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # shared address space (CGNAT)
    "169.254.169.254",  # cloud metadata
    "100.100.100.200",  # Alibaba Cloud metadata
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "metadata.google.internal",
    "metadata.tencentyun.com",
    "approval",  # a single-label name: a neighbour container
    "postgres.",
    "printer.local",
    "notify.default.svc.cluster.local",
    "1.1.1.1.1",
    "foo.123",
]


@pytest.mark.parametrize("host", INTERNAL_HOSTS)
def test_every_spelling_of_an_internal_destination_is_refused(host: str) -> None:
    with pytest.raises(DestinationRefused):
        EgressPolicy().check_host(host)


@pytest.mark.parametrize("host", ["erp.example.com", "8.8.8.8", "[2400:3200::1]", "例子.中国"])
def test_public_destinations_pass(host: str) -> None:
    EgressPolicy().check_host(host)


def test_allowing_loopback_allows_nothing_else() -> None:
    policy = EgressPolicy(allow_loopback=True)
    for host in ("127.0.0.1", "127.1", "localhost", "[::1]"):
        policy.check_host(host)
    for host in ("10.0.0.1", "169.254.169.254", "[fe80::1]", "approval", "192.168.0.1"):
        with pytest.raises(DestinationRefused):
            policy.check_host(host)


def test_a_configured_internal_suffix_is_refused() -> None:
    policy = EgressPolicy(denied_suffixes=("gov.sh.cn",))
    with pytest.raises(DestinationRefused):
        policy.check_host("oa.gov.sh.cn")
    policy.check_host("www.example.cn")


def test_production_refuses_the_loopback_allowance(tokens: Tokens, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="WEBHOOK_ALLOW_LOOPBACK"):
        make_settings("sqlite+aiosqlite:///:memory:", tokens, tmp_path, environment="production")


class FakeDNS:
    """A resolver the test controls: what a hostile name server would answer."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}

    async def __call__(self, host: str, port: int) -> list[str]:
        if host not in self.answers:
            raise OSError("no such name")
        return self.answers[host]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS()
    monkeypatch.setattr(notify.channels.egress, "system_resolve", fake)
    return fake


@pytest.fixture
async def strict_app(
    database_url: str, tokens: Tokens, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Notify as deployed: no loopback allowance (plain http stays allowed outside production)."""
    settings = make_settings(database_url, tokens, tmp_path, webhook_allow_loopback=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notify.test") as c:
            yield app, c


async def test_registration_refuses_internal_destinations(
    strict_app: tuple[FastAPI, httpx.AsyncClient], tokens: Tokens, outside: Outside, dns: FakeDNS
) -> None:
    _, client = strict_app
    owner = tokens.enterprise(random_uscc())
    port = outside.base_url.rsplit(":", 1)[1]
    dns.answers["hooks.rebound.example.com"] = ["93.184.216.34", "10.1.2.3"]
    urls = [f"http://{host}:{port}/hooks/x" for host in INTERNAL_HOSTS] + [
        # The real receiver the other tests post to, by its address and by a name for it.
        outside.webhook_url("strict"),
        f"https://hooks.rebound.example.com:{port}/hooks/x",
    ]
    for url in urls:
        response = await client.post("/api/v1/webhooks", json={"url": url}, headers=owner)
        assert response.status_code == 422, (url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem(response)["code"] == "invalid_webhook_url", url
    assert (await client.get("/api/v1/webhooks", headers=owner)).json() == []
    assert "strict" not in outside.webhooks


@pytest.mark.parametrize(
    "url", ["https://[abc/hook", "https://[::1/hook", "https://example.com]/hook", "http://[x]/"]
)
async def test_a_malformed_url_is_refused_as_a_problem(
    client: httpx.AsyncClient, tokens: Tokens, url: str
) -> None:
    owner = tokens.enterprise(random_uscc())
    response = await client.post("/api/v1/webhooks", json={"url": url}, headers=owner)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem(response)["code"] == "invalid_webhook_url"
    assert (await client.get("/api/v1/webhooks", headers=owner)).json() == []


async def test_a_name_rebound_to_loopback_after_registration_is_not_delivered(
    strict_app: tuple[FastAPI, httpx.AsyncClient], tokens: Tokens, outside: Outside, dns: FakeDNS
) -> None:
    app, client = strict_app
    uscc = random_uscc()
    name = f"rebind-{uuid.uuid4().hex[:8]}"
    host = f"{name}.example.com"
    port = outside.base_url.rsplit(":", 1)[1]
    dns.answers[host] = ["93.184.216.34"]  # public while it is checked at registration
    created = await client.post(
        "/api/v1/webhooks",
        json={"url": f"http://{host}:{port}/hooks/{name}"},
        headers=tokens.enterprise(uscc),
    )
    assert created.status_code == 201, created.text
    dns.answers[host] = ["127.0.0.1"]  # …and the name server then points it at notify's host
    jurisdiction = "310116"
    event = application_event(EventType.APPLICATION_SUBMITTED, uscc, jurisdiction=jurisdiction)
    await post_events(client, tokens, [event])
    await drain(app)

    assert name not in outside.webhooks
    staff = tokens.staff(Role.ACCEPTOR, jurisdiction)
    dead = await client.get("/api/v1/deliveries", headers=staff)
    mine = [d for d in dead.json()["items"] if d["event_id"] == event["id"]]
    assert [d["channel"] for d in mine] == ["webhook"]
    assert mine[0]["attempts"] == 1  # refused for good, not retried
    assert "回调地址已拒绝" in mine[0]["last_error"]


async def test_delivery_connects_to_the_checked_address_and_keeps_the_host(
    client: httpx.AsyncClient, app: FastAPI, tokens: Tokens, outside: Outside, dns: FakeDNS
) -> None:
    # The session's app allows loopback (the receiver is on 127.0.0.1): the name resolves to it
    # once, and the request goes to that address with the name in its Host header.
    uscc = random_uscc()
    name = f"pinned-{uuid.uuid4().hex[:8]}"
    host = f"{name}.example.com"
    port = outside.base_url.rsplit(":", 1)[1]
    dns.answers[host] = ["127.0.0.1"]
    created = await client.post(
        "/api/v1/webhooks",
        json={"url": f"http://{host}:{port}/hooks/{name}"},
        headers=tokens.enterprise(uscc),
    )
    assert created.status_code == 201, created.text
    await post_events(client, tokens, [application_event(EventType.APPLICATION_SUBMITTED, uscc)])
    await drain(app)
    [(headers, _body)] = outside.webhooks[name]
    assert headers["host"] == f"{host}:{port}"


async def test_the_receivers_answer_is_not_kept_where_staff_read_it(
    client: httpx.AsyncClient, app: FastAPI, tokens: Tokens, outside: Outside
) -> None:
    uscc = random_uscc()
    name = f"leaky-{uuid.uuid4().hex[:8]}"
    outside.webhook_status[name] = 500
    outside.webhook_answer[name] = b"<h1>Internal</h1> db password=hunter2 at 10.9.8.7"
    await client.post(
        "/api/v1/webhooks", json={"url": outside.webhook_url(name)}, headers=tokens.enterprise(uscc)
    )
    jurisdiction = "310117"
    event = application_event(EventType.APPLICATION_SUBMITTED, uscc, jurisdiction=jurisdiction)
    await post_events(client, tokens, [event])
    await drain(app)

    staff = tokens.staff(Role.ACCEPTOR, jurisdiction)
    dead = (await client.get("/api/v1/deliveries", headers=staff)).json()["items"]
    [mine] = [d for d in dead if d["event_id"] == event["id"]]
    assert mine["last_error"] == "回调返回 HTTP 500 Internal Server Error"
    detail = await client.get(f"/api/v1/deliveries/{mine['id']}", headers=staff)
    assert "hunter2" not in detail.text and "10.9.8.7" not in detail.text


def _message(address: str) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=uuid.uuid4(),
        channel=Channel.WEBHOOK,
        address=address,
        title="t",
        body="b",
        payload={"x": 1},
        secrets=("whsec_test",),
    )


async def test_a_redirect_is_not_followed_and_its_body_not_repeated() -> None:
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            302,
            headers={"Location": "http://169.254.169.254/latest/meta-data/iam"},
            content=b"moved: secret-token-123",
        )

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    sender = WebhookSender(EgressPolicy(), resolver=public, transport=httpx.MockTransport(receiver))
    try:
        with pytest.raises(ChannelError) as caught:
            await sender.send(_message("https://erp.example.com/hooks/a"))
    finally:
        await sender.aclose()
    assert len(seen) == 1
    assert seen[0].url.host == "93.184.216.34"
    assert seen[0].headers["host"] == "erp.example.com"
    assert seen[0].extensions["sni_hostname"] == "erp.example.com"
    assert str(caught.value) == "回调返回 HTTP 302 Found"


async def test_a_name_with_any_internal_address_is_refused_at_connect_time() -> None:
    async def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "169.254.169.254"]

    def receiver(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may leave")

    sender = WebhookSender(EgressPolicy(), resolver=mixed, transport=httpx.MockTransport(receiver))
    try:
        with pytest.raises(ChannelError) as caught:
            await sender.send(_message("https://erp.example.com/hooks/a"))
    finally:
        await sender.aclose()
    assert caught.value.permanent


# --- ports: only those the worker's network lets out -------------------------------------------

ROOT = Path(__file__).resolve().parents[4]


def test_the_default_ports_are_the_ones_the_network_policy_lets_out(
    tokens: Tokens, tmp_path: Path
) -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/base/notify.yaml").read_text()))
    [config] = [d for d in docs if d and d["kind"] == "ConfigMap"]
    [worker] = [
        d
        for d in docs
        if d and d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "notify-worker"
    ]
    public = {
        port["port"]
        for rule in worker["spec"]["egress"]
        for peer in rule["to"]
        if peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0"
        for port in rule["ports"]
    }
    default = Settings.model_fields["webhook_ports"].get_default(call_default_factory=True)
    assert default == [443]
    assert json.loads(config["data"]["NOTIFY_WEBHOOK_PORTS"]) == default
    assert set(default) <= public
    # Any port is for development and tests (the stand-ins listen on ports of their own).
    with pytest.raises(ValidationError, match="WEBHOOK_PORTS"):
        make_settings(
            "postgresql+asyncpg://x@db/notify",
            tokens,
            tmp_path,
            environment="production",
            webhook_allow_loopback=False,
            webhook_ports=[],
        )
    with pytest.raises(ValidationError, match="WEBHOOK_PORTS"):
        make_settings("sqlite+aiosqlite:///:memory:", tokens, tmp_path, webhook_ports=[70000])


@pytest.fixture
async def port_443_app(
    database_url: str, tokens: Tokens, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Notify with webhooks on port 443 only, as deployed (plain http still allowed)."""
    settings = make_settings(database_url, tokens, tmp_path, webhook_ports=[443])
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notify.test") as c:
            yield app, c


async def test_registration_refuses_a_port_the_worker_cannot_reach(
    port_443_app: tuple[FastAPI, httpx.AsyncClient], tokens: Tokens, dns: FakeDNS
) -> None:
    _, client = port_443_app
    owner = tokens.enterprise(random_uscc())
    dns.answers["erp.example.com"] = ["93.184.216.34"]
    for url, port in (
        ("https://erp.example.com:8443/hooks/a", 8443),
        ("http://erp.example.com/hooks/a", 80),
        ("http://erp.example.com:8080/hooks/a", 8080),
    ):
        response = await client.post("/api/v1/webhooks", json={"url": url}, headers=owner)
        assert response.status_code == 422, (url, response.text)
        body = problem(response)
        assert body["code"] == "invalid_webhook_url"
        assert body["reason"] == "port_not_allowed"
        assert body["detail"] == f"回调地址的端口 {port} 不可用，只允许端口 443"
    assert (await client.get("/api/v1/webhooks", headers=owner)).json() == []
    for url in ("https://erp.example.com/hooks/a", "https://erp.example.com:443/hooks/b"):
        response = await client.post("/api/v1/webhooks", json={"url": url}, headers=owner)
        assert response.status_code == 201, (url, response.text)


async def test_a_webhook_on_a_port_no_longer_allowed_is_dead_with_the_reason(
    client: httpx.AsyncClient,
    app: FastAPI,
    database_url: str,
    tokens: Tokens,
    outside: Outside,
    tmp_path: Path,
) -> None:
    # Registered while any port was allowed; the worker now lets webhooks out on 443 only.
    uscc = random_uscc()
    name = f"port-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        "/api/v1/webhooks", json={"url": outside.webhook_url(name)}, headers=tokens.enterprise(uscc)
    )
    assert created.status_code == 201, created.text
    jurisdiction = "310120"
    event = application_event(EventType.APPLICATION_SUBMITTED, uscc, jurisdiction=jurisdiction)
    await post_events(client, tokens, [event])
    settings = make_settings(database_url, tokens, tmp_path, webhook_ports=[443])
    async with replica(app, settings) as worker:
        assert await worker.run_once() == 1

    assert name not in outside.webhooks
    staff = tokens.staff(Role.ACCEPTOR, jurisdiction)
    dead = await client.get("/api/v1/deliveries", headers=staff)
    [mine] = [d for d in dead.json()["items"] if d["event_id"] == event["id"]]
    assert mine["channel"] == "webhook"
    assert mine["attempts"] == 1  # refused for good, not retried
    port = outside.base_url.rsplit(":", 1)[1]
    assert mine["last_error"] == f"回调地址已拒绝：回调地址的端口 {port} 不可用，只允许端口 443"
