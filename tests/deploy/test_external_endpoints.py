"""What the pods reach outside the cluster: every URL a ConfigMap points outside the cluster at has an
egress rule for the pods that call it, and the seal platform's pinned key is the operator's to give
(the services refuse to start until it is)."""

from __future__ import annotations

import json
import os
import re
from ipaddress import IPv4Network, ip_network
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError

from govshared.seal import generate_sm2_key

from .support import BY_PREFIX, OVERLAYS, SERVICES, ServiceInfo, of_kind, render_overlay

# URL-valued settings no pod calls: browsers' origins, and the suite's own public addresses (the
# Ingress host, printed in QR codes and links; tests/deploy/test_kubernetes.py checks them).
NEVER_CALLED = re.compile(r"_(CORS_ORIGINS|PUBLIC_BASE_URL|PUBLIC_URL)$")

# Each setting that points outside the cluster: the components whose pods call it, and the
# NetworkPolicy that lets them (deploy/README.md, the egress table). A new one fails
# test_every_external_url_is_reachable_from_the_pods_that_call_it until it is added here and to a
# policy. A host name cannot be matched with a CIDR offline (the overlay's subnet is the operator's
# knowledge), so the test asks for the named policy, the URL's port, and a subnet the overlay set.
EXTERNAL: dict[str, tuple[frozenset[str], str]] = {
    "APPROVAL_S3_ENDPOINT": (frozenset({"web", "worker"}), "approval-seal-and-storage"),
    "APPROVAL_SEAL_SERVICE_URL": (frozenset({"web", "worker"}), "approval-seal-and-storage"),
    # Every applicant's signature is checked against the CA's CRL in the web pods (CrlSource).
    "APPROVAL_SIGNING_CRL_URLS": (frozenset({"web"}), "approval-signing-ca"),
    "LICENSE_S3_ENDPOINT": (frozenset({"web", "worker"}), "license-seal-and-storage"),
    "LICENSE_SEAL_SERVICE_URL": (frozenset({"web", "worker"}), "license-seal-and-storage"),
}

# RFC 5737: the base's placeholders, which each overlay replaces with its real subnets.
DOCUMENTATION_NETWORKS = [
    IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]


def _urls(value: str) -> list[str]:
    """The http(s) URLs of a ConfigMap value (a URL, or a JSON list of them)."""
    values = json.loads(value) if value.startswith("[") else [value]
    return [v for v in values if isinstance(v, str) and re.match(r"https?://", v)]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _external_urls(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(setting, URL) for every URL a ConfigMap points outside the cluster at, called by a pod."""
    in_cluster = set(of_kind(docs, "Service"))
    found = []
    for configmap in of_kind(docs, "ConfigMap").values():
        for name, value in (configmap.get("data") or {}).items():
            if NEVER_CALLED.search(name):
                continue
            for url in _urls(str(value)):
                host = urlsplit(url).hostname or ""
                if host.split(".")[0] in in_cluster and (
                    "." not in host or ".svc" in host
                ):  # a Service of the suite: the policies of test_kubernetes.py
                    continue
                found.append((name, url))
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_external_url_is_reachable_from_the_pods_that_call_it(overlay: str) -> None:
    docs = render_overlay(overlay)
    policies = of_kind(docs, "NetworkPolicy")
    external = _external_urls(docs)
    assert {name for name, _ in external} >= {
        "APPROVAL_SIGNING_CRL_URLS",
        "APPROVAL_SEAL_SERVICE_URL",
        "APPROVAL_S3_ENDPOINT",
        "LICENSE_SEAL_SERVICE_URL",
        "LICENSE_S3_ENDPOINT",
    }, "the check sees the CRLs, the seal platform and object storage"
    for name, url in external:
        assert name in EXTERNAL, (
            f"{name} points outside the cluster ({url}): say which pods call it and add an egress "
            "NetworkPolicy for them (deploy/k8s, deploy/README.md's egress table, EXTERNAL here)"
        )
        components, policy_name = EXTERNAL[name]
        assert policy_name in policies, f"{name} ({url}): no NetworkPolicy {policy_name}"
        policy = policies[policy_name]["spec"]
        assert "Egress" in policy["policyTypes"]
        parts = urlsplit(url)
        port = parts.port or {"https": 443, "http": 80}[parts.scheme]
        service = next(s for p, s in BY_PREFIX.items() if name.startswith(p))
        for component in components:
            labels = {
                "app.kubernetes.io/name": service.name,
                "app.kubernetes.io/component": component,
            }
            assert _selects(policy["podSelector"], labels), (name, policy_name, component)
            rules = [
                rule
                for rule in policy["egress"]
                if any(p.get("port") == port for p in rule.get("ports", [{"port": port}]))
                and any("ipBlock" in peer for peer in rule.get("to", []))
            ]
            assert rules, (
                f"{policy_name} lets {service.name} {component} out on no subnet on {port} ({url})"
            )
            for rule in rules:
                for peer in rule["to"]:
                    cidr = ip_network(peer["ipBlock"]["cidr"])
                    placeholder = isinstance(cidr, IPv4Network) and any(
                        cidr.subnet_of(d) for d in DOCUMENTATION_NETWORKS
                    )
                    assert not placeholder, (
                        f"{overlay}: {policy_name} still has the base's documentation CIDR {cidr}"
                    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_crl_policy_allows_http_and_https_to_approval_web_only(overlay: str) -> None:
    """CAs publish CRLs over http as often as https (a CRL is signed, plain http cannot forge one)."""
    policy = of_kind(render_overlay(overlay), "NetworkPolicy")["approval-signing-ca"]["spec"]
    (rule,) = policy["egress"]
    assert {p["port"] for p in rule["ports"]} == {80, 443}
    for component in ("worker", "migration"):
        labels = {"app.kubernetes.io/name": "approval", "app.kubernetes.io/component": component}
        assert not _selects(policy["podSelector"], labels)


SEALING = [s for s in SERVICES if s.name in ("approval", "license")]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SEALING, ids=lambda s: s.name)
def test_the_seal_key_to_pin_is_the_operators_and_production_refuses_it_unset(
    overlay: str, service: ServiceInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifests ship a visible placeholder for the seal platform's public key; the service,
    started with the overlay's ConfigMap, refuses it (and an empty one) and starts once a key is
    pinned, and refuses a seal service URL that is not https."""
    config = of_kind(render_overlay(overlay), "ConfigMap")[f"{service.name}-config"]["data"]
    prefix = service.prefix
    assert config[f"{prefix}ENVIRONMENT"] == "production"
    assert config[f"{prefix}SEAL_BACKEND"] == "http"
    assert re.fullmatch(r"<[^>]+>", config[f"{prefix}SEAL_PUBLIC_KEY"]), "a visible placeholder"
    for name in os.environ:
        if name.startswith(prefix):
            monkeypatch.delenv(name)
    for name, value in config.items():
        monkeypatch.setenv(name, str(value))
    # What the Secrets and the onestop-identity ConfigMap give.
    monkeypatch.setenv(f"{prefix}DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/x")
    monkeypatch.setenv(f"{prefix}JWT_ISSUER", "https://idp.example.gov.cn")
    monkeypatch.setenv(f"{prefix}JWT_AUDIENCE", "onestop")
    settings_class = service.settings_class()
    with pytest.raises(ValidationError, match=f"{prefix}SEAL_PUBLIC_KEY is still the manifests"):
        settings_class()
    monkeypatch.setenv(f"{prefix}SEAL_PUBLIC_KEY", "")
    with pytest.raises(ValidationError, match=f"needs {prefix}SEAL_PUBLIC_KEY"):
        settings_class()
    public = generate_sm2_key()[1]
    monkeypatch.setenv(f"{prefix}SEAL_PUBLIC_KEY", public)
    assert settings_class().seal_public_key == public
    monkeypatch.setenv(f"{prefix}SEAL_SERVICE_URL", "http://seal.example.gov.cn")
    with pytest.raises(ValidationError, match="over https"):
        settings_class()
