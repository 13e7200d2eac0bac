"""deploy/k8s: every overlay renders offline and validates against the Kubernetes schemas; the
manifests keep secrets out, probe the right endpoints, and allow only the architecture's calls."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support import (
    KUBERNETES_VERSION,
    OVERLAYS,
    ROOT,
    SERVICES,
    ServiceInfo,
    of_kind,
    pod_spec,
    render_overlay,
    require_tool,
    run,
)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_kubernetes_schemas(overlay: str, tmp_path: Path) -> None:
    validate = require_tool("kubernetes-validate")
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(yaml.safe_dump_all(render_overlay(overlay), allow_unicode=True))
    result = run([validate, "--strict", "-k", KUBERNETES_VERSION, "--quiet", str(rendered)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_values_in_manifests(overlay: str) -> None:
    docs = render_overlay(overlay)
    assert not of_kind(docs, "Secret"), "Secrets are created outside the chart"
    text = yaml.safe_dump_all(docs, allow_unicode=True)
    assert "postgresql+asyncpg://" not in text
    assert "PRIVATE KEY" not in text
    for configmap in of_kind(docs, "ConfigMap").values():
        for key in configmap["data"]:
            assert not re.search(r"DATABASE_URL|PASSWORD|API_KEY|SECRET$", key), key


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_workloads(overlay: str, service: ServiceInfo) -> None:
    docs = render_overlay(overlay)
    deployments = of_kind(docs, "Deployment")
    web, worker = deployments[service.name], deployments[f"{service.name}-worker"]
    job = of_kind(docs, "Job")[f"{service.name}-migrate"]
    (web_container,) = pod_spec(web)["containers"]
    assert web_container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web_container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "podAntiAffinity" in pod_spec(web)["affinity"]
    assert "podAntiAffinity" in pod_spec(worker)["affinity"]
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (worker_container,) = pod_spec(worker)["containers"]
    assert worker_container["command"] == ["python", "-m", f"{service.package}.worker"]
    (migrate,) = pod_spec(job)["containers"]
    assert migrate["command"] == [
        "alembic",
        "-c",
        f"/app/services/{service.name}/alembic.ini",
        "upgrade",
        "head",
    ]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    for doc in (web, worker, job):
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True
        (container,) = spec["containers"]
        assert container["image"].endswith(f"/onestop/{service.name}:0.1.0")
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= set(container["resources"])
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/data"} <= mounts, "the only writable paths"
        env = {e["name"]: e for e in container.get("env", [])}
        ref = env[f"{service.prefix}DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"{service.name}-database", "key": "url"}
    config = of_kind(docs, "ConfigMap")[f"{service.name}-config"]["data"]
    assert config[f"{service.prefix}RUN_WORKERS"] == "false"
    assert config[f"{service.prefix}MIGRATE_ON_START"] == "false"
    assert config[f"{service.prefix}ENVIRONMENT"] == "production"
    assert (
        of_kind(docs, "Service")[service.name]["spec"]["selector"]
        == web["spec"]["selector"]["matchLabels"]
    )
    hpa = of_kind(docs, "HorizontalPodAutoscaler")[service.name]
    assert hpa["spec"]["scaleTargetRef"]["name"] == service.name
    assert hpa["spec"]["minReplicas"] >= 2
    pdbs = of_kind(docs, "PodDisruptionBudget")
    assert pdbs[service.name]["spec"]["selector"] == web["spec"]["selector"]


@pytest.fixture(scope="module")
def public_prefixes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``/api/v1/<segment>`` of every route in each service's OpenAPI, and its public pages."""
    prefixes = {}
    for service in SERVICES:
        data_dir = tmp_path_factory.mktemp(service.name)
        code = (
            "import json; "
            f"from {service.package}.main import create_app; "
            'print(json.dumps(sorted(create_app().openapi()["paths"])))'
        )
        env = {f"{service.prefix}DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
        result = run([sys.executable, "-c", code], env=env, cwd=data_dir)
        assert result.returncode == 0, result.stderr
        for path in json.loads(result.stdout):
            if path.startswith("/api/v1/"):
                prefixes["/api/v1/" + path.split("/")[3]] = service.name
            elif path not in OPS_PATHS:
                prefixes[path] = service.name  # a public page, e.g. approval's /verify
    return prefixes


# Probes and metrics stay inside the cluster.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes_every_public_path_to_its_service(
    overlay: str, public_prefixes: dict[str, str]
) -> None:
    (ingress,) = of_kind(render_overlay(overlay), "Ingress").values()
    assert ingress["spec"]["tls"][0]["secretName"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    routed: dict[str, str] = {}
    for path in rule["http"]["paths"]:
        assert path["pathType"] == "Prefix"
        routed[path["path"]] = path["backend"]["service"]["name"]
    # Service-to-service deliveries (/api/v1/events) stay inside the cluster.
    expected = {p: s for p, s in public_prefixes.items() if p != "/api/v1/events"}
    assert routed == expected


# The settings every public URL a user receives derives from: QR codes and verification links in
# sealed PDFs, licences' ``qr_url``, download links in notify's messages.
PUBLIC_URL_SETTINGS = re.compile(r"^[A-Z]+_(?:[A-Z]+_)?PUBLIC(?:_BASE)?_URL$")


def public_url_setting_names() -> set[str]:
    """The public-URL settings of every service, from the Settings classes."""
    return {
        name for s in SERVICES for name in s.setting_env_names() if PUBLIC_URL_SETTINGS.match(name)
    }


def test_every_service_has_its_public_url_settings() -> None:
    assert public_url_setting_names() == {
        "APPROVAL_PUBLIC_BASE_URL",
        "LICENSE_PUBLIC_BASE_URL",
        "NOTIFY_APPROVAL_PUBLIC_URL",
        "NOTIFY_LICENSE_PUBLIC_URL",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_public_url_is_the_overlays_ingress_host(overlay: str) -> None:
    docs = render_overlay(overlay)
    (ingress,) = of_kind(docs, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    expected = f"https://{rule['host']}"
    config = {
        key: value
        for configmap in of_kind(docs, "ConfigMap").values()
        for key, value in configmap["data"].items()
    }
    public = {name: config.get(name) for name in public_url_setting_names()}
    assert public == dict.fromkeys(public, expected), f"{overlay}: Ingress host {rule['host']}"


# The calls the architecture makes (docs/architecture.md, "Calls between services"), as (from, to) component pairs on port 8000.
ARCHITECTURE = {
    (("approval", "web"), ("license", "web")),  # reform mode, enterprise checks
    (("approval", "worker"), ("notify", "web")),  # approval's events
    (("approval", "worker"), ("license", "web")),  # approved applications → licence issuance
    (("license", "worker"), ("notify", "web")),  # licence events
    (("license", "worker"), ("approval", "web")),  # licence issued (Art. 44 delivery)
    (("notify", "worker"), ("approval", "web")),  # proof of service
    (("notify", "worker"), ("license", "web")),  # proof of service
}


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _peer_allows(peers: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    return any(
        "namespaceSelector" not in peer
        and "podSelector" in peer
        and _selects(peer["podSelector"], labels)
        for peer in peers
    )


def _port_allowed(rule: dict[str, Any], port: int) -> bool:
    return "ports" not in rule or any(p.get("port") == port for p in rule["ports"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_architecture(overlay: str) -> None:
    policies = list(of_kind(render_overlay(overlay), "NetworkPolicy").values())
    assert any(
        p["spec"]["podSelector"] == {} and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        for p in policies
    ), "a default deny"
    pods = {
        (s.name, c): {"app.kubernetes.io/name": s.name, "app.kubernetes.io/component": c}
        for s in SERVICES
        for c in ("web", "worker", "migration")
    }

    def allowed(source: dict[str, str], target: dict[str, str]) -> bool:
        egress = any(
            _selects(p["spec"]["podSelector"], source)
            and any(
                _peer_allows(r.get("to", []), target) and _port_allowed(r, 8000)
                for r in p["spec"].get("egress", [])
            )
            for p in policies
        )
        ingress = any(
            _selects(p["spec"]["podSelector"], target)
            and any(
                _peer_allows(r.get("from", []), source) and _port_allowed(r, 8000)
                for r in p["spec"].get("ingress", [])
            )
            for p in policies
        )
        return egress and ingress

    actual = {(a, b) for a in pods for b in pods if a != b and allowed(pods[a], pods[b])}
    assert actual == ARCHITECTURE
    # The ingress controller reaches every web pod and nothing else.
    for (name, component), labels in pods.items():
        from_ingress = any(
            _selects(p["spec"]["podSelector"], labels)
            and any(
                peer.get("namespaceSelector", {})
                .get("matchLabels", {})
                .get("kubernetes.io/metadata.name")
                == "ingress-nginx"
                for r in p["spec"].get("ingress", [])
                for peer in r.get("from", [])
            )
            for p in policies
        )
        assert from_ingress == (component == "web"), (name, component)


def test_kubectl_reports_its_version() -> None:
    kubectl = require_tool("kubectl")
    result = run([kubectl, "version", "--client", "--output=json"])
    assert result.returncode == 0, result.stderr
    assert "kustomizeVersion" in result.stdout
    assert ROOT.exists()
