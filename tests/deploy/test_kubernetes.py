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

# Operators' custom resources: kubernetes-validate has no schema for them (it knows the built-in
# API only), so their fields are checked by the tests below instead.
CUSTOM_RESOURCE_GROUPS = ("monitoring.coreos.com/", "postgresql.cnpg.io/")


def built_in(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents of Kubernetes' own API."""
    return [d for d in docs if not d["apiVersion"].startswith(CUSTOM_RESOURCE_GROUPS)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_kubernetes_schemas(overlay: str, tmp_path: Path) -> None:
    validate = require_tool("kubernetes-validate")
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(yaml.safe_dump_all(built_in(render_overlay(overlay)), allow_unicode=True))
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


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_custom_resource_is_a_kind_this_suite_checks(overlay: str) -> None:
    custom = {
        (d["apiVersion"], d["kind"])
        for d in render_overlay(overlay)
        if d["apiVersion"].startswith(CUSTOM_RESOURCE_GROUPS)
    }
    assert custom <= {
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("postgresql.cnpg.io/v1", "Cluster"),
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_every_web_and_worker_pod_on_its_metrics_port(overlay: str) -> None:
    docs = render_overlay(overlay)
    (monitor,) = of_kind(docs, "ServiceMonitor").values()
    (pod_monitor,) = of_kind(docs, "PodMonitor").values()
    services = [
        s
        for s in of_kind(docs, "Service").values()
        if _selects(monitor["spec"]["selector"], s["metadata"]["labels"])
    ]
    assert sorted(s["metadata"]["name"] for s in services) == sorted(s.name for s in SERVICES)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    for service in services:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    deployments = of_kind(docs, "Deployment").values()
    workers = [
        d
        for d in deployments
        if _selects(pod_monitor["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
    ]
    assert sorted(d["metadata"]["name"] for d in workers) == sorted(
        f"{s.name}-worker" for s in SERVICES
    )
    (pod_endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    for worker in workers:
        (container,) = pod_spec(worker)["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        name = worker["metadata"]["name"].removesuffix("-worker")
        config = of_kind(docs, "ConfigMap")[f"{name}-config"]
        assert pod_endpoint["port"] in ports
        assert str(ports[pod_endpoint["port"]]) in config["data"].values()


ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMQL_WORDS = frozenset(
    [
        "sum",
        "max",
        "min",
        "avg",
        "rate",
        "irate",
        "increase",
        "deriv",
        "by",
        "without",
        "and",
        "or",
        "unless",
        "on",
        "ignoring",
        "histogram_quantile",
        "absent",
        "count",
        "clamp_min",
    ]
)


def test_the_prometheus_rule_is_the_alert_file_and_alerts_on_metrics_the_code_exports() -> None:
    for overlay in OVERLAYS:
        (rule,) = of_kind(render_overlay(overlay), "PrometheusRule").values()
        assert rule["spec"] == yaml.safe_load(ALERTS.read_text()), "deploy/prometheus/alerts.yml"
    source = "\n".join(
        path.read_text()
        for folder in ("shared/src", "services")
        for path in (ROOT / folder).rglob("*.py")
        if "tests" not in path.parts
    )
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    for rule in rules:
        expr = re.sub(r'\{[^}]*\}|"[^"]*"', "", rule["expr"])
        for name in set(re.findall(r"[a-z][a-z0-9_]*_[a-z0-9_]+", expr)) - PROMQL_WORDS:
            if name.startswith("kube_"):
                continue  # the platform's metrics (kube-state-metrics)
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert f'"{base}"' in source or f'"{name}"' in source, (rule["alert"], name)


def test_staging_runs_a_postgresql_cluster_per_service_and_production_an_external_one() -> None:
    staging = render_overlay("staging")
    clusters = of_kind(staging, "Cluster")
    assert sorted(clusters) == [f"pg-{s.name}" for s in SERVICES]
    for service in SERVICES:
        cluster = clusters[f"pg-{service.name}"]["spec"]
        assert cluster["instances"] >= 2
        assert cluster["bootstrap"]["initdb"] == {"database": service.name, "owner": service.name}
    policies = of_kind(staging, "NetworkPolicy")
    instance = {"cnpg.io/cluster": "pg-approval"}
    (egress,) = policies["allow-postgresql"]["spec"]["egress"]
    assert _peer_allows(egress["to"], instance) and _port_allowed(egress, 5432)
    (from_suite, *_) = policies["postgresql-instances"]["spec"]["ingress"]
    for service in SERVICES:
        for component in ("web", "worker", "migration"):
            labels = {
                "app.kubernetes.io/name": service.name,
                "app.kubernetes.io/component": component,
            }
            assert _peer_allows(from_suite["from"], labels) and _port_allowed(from_suite, 5432)
    production = render_overlay("production")
    assert not of_kind(production, "Cluster")
    (external,) = of_kind(production, "NetworkPolicy")["allow-postgresql"]["spec"]["egress"]
    assert "ipBlock" in external["to"][0]
