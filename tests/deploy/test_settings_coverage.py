"""Every setting a service reads is set by the chart and by compose, and nothing else is."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

from .support import (
    BY_PREFIX,
    DEPLOY,
    OVERLAYS,
    ROOT,
    SERVICES,
    ServiceInfo,
    compose_file,
    of_kind,
    pod_spec,
    render_overlay,
)


def _container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> set[str]:
    """Variable names a container gets: its env entries and the ConfigMaps it imports whole."""
    configmaps = of_kind(docs, "ConfigMap")
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "secrets are referenced key by key (secretKeyRef)"
        names |= set(configmaps[source["configMapRef"]["name"]]["data"])
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_chart_sets_exactly_the_settings_the_service_reads(
    overlay: str, service: ServiceInfo
) -> None:
    docs = render_overlay(overlay)
    workloads = [
        d
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        and d["metadata"]["labels"]["app.kubernetes.io/name"] == service.name
    ]
    assert len(workloads) == 3, "web, worker and migration"
    expected = service.setting_env_names()
    for workload in workloads:
        (container,) = pod_spec(workload)["containers"]
        names = _container_env(docs, container)
        assert expected - names == set(), f"{workload['metadata']['name']} lacks these settings"
        assert names - expected == set(), f"{workload['metadata']['name']}: nothing reads these"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_prefixed_variable_in_the_chart_is_a_setting(overlay: str) -> None:
    docs = render_overlay(overlay)
    seen: set[str] = set()
    for configmap in of_kind(docs, "ConfigMap").values():
        seen |= set(configmap.get("data", {}))
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for container in pod_spec(doc)["containers"]:
                seen |= {e["name"] for e in container.get("env", [])}
    for name in seen:
        prefix = next((p for p in BY_PREFIX if name.startswith(p)), None)
        assert prefix is not None, f"{name}: not a setting of any service"
        assert name in BY_PREFIX[prefix].setting_env_names(), f"{name}: no service reads it"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_compose_sets_exactly_the_settings_the_service_reads(service: ServiceInfo) -> None:
    services = compose_file()["services"]
    expected = service.setting_env_names()
    for name in (service.name, f"{service.name}-worker", f"{service.name}-migrate"):
        names = set(services[name]["environment"])
        assert expected - names == set(), f"compose {name} lacks these settings"
        assert names - expected == set(), f"compose {name}: nothing reads these"


def test_no_stray_prefixed_variable_in_compose() -> None:
    for name, container in compose_file()["services"].items():
        for variable in container.get("environment") or {}:
            prefix = next((p for p in BY_PREFIX if variable.startswith(p)), None)
            if prefix is not None:
                assert variable in BY_PREFIX[prefix].setting_env_names(), (name, variable)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_dockerfile_env_is_settings(service: ServiceInfo) -> None:
    text = (ROOT / "services" / service.name / "Dockerfile").read_text()
    for variable in re.findall(r"\b((?:APPROVAL|LICENSE|NOTIFY)_[A-Z0-9_]+)=", text):
        assert variable.startswith(service.prefix)
        assert variable in service.setting_env_names(), variable


def test_readme_settings_table_is_current() -> None:
    table = _settings_table_module().render()
    readme = (DEPLOY / "README.md").read_text()
    assert table in readme, (
        "deploy/README.md's settings tables are stale: paste the output of "
        "`uv run python deploy/settings_table.py`"
    )


def _settings_table_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("settings_table", DEPLOY / "settings_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_settings_table_names_the_source_the_chart_uses(service: ServiceInfo) -> None:
    sources = _settings_table_module().SOURCES
    docs = render_overlay("production")
    (container,) = pod_spec(of_kind(docs, "Deployment")[service.name])["containers"]
    actual = {}
    for entry in container.get("env", []):
        ref = entry["valueFrom"]
        kind, body = next(iter(ref.items()))
        label = {"secretKeyRef": "Secret", "configMapKeyRef": "ConfigMap"}[kind]
        optional = " (optional)" if body.get("optional") else ""
        actual[entry["name"]] = f"{label} `{body['name']}`{optional}"
    for name in service.setting_env_names():
        field = name.removeprefix(service.prefix).lower()
        documented = sources.get(field, "ConfigMap `{svc}-config`").format(svc=service.name)
        assert actual.get(name, f"ConfigMap `{service.name}-config`") == documented, name


SECRET_NAMES = re.compile(
    r"(_token|_password|_secret|_secret_key|_api_key|_access_key|database_url)$"
)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_credentials_come_from_secrets_not_configmaps(overlay: str, service: ServiceInfo) -> None:
    """Tokens, passwords and keys reach every workload from a Secret (secretKeyRef), never as a
    ConfigMap value that anyone who may read the namespace's configuration can see."""
    docs = render_overlay(overlay)
    configmaps = of_kind(docs, "ConfigMap")
    credentials = {
        name
        for name in service.setting_env_names()
        if SECRET_NAMES.search(name.removeprefix(service.prefix).lower())
    }
    assert credentials, "the pattern finds this service's credentials"
    for workload in docs:
        if workload["kind"] not in ("Deployment", "Job") or (
            workload["metadata"]["labels"]["app.kubernetes.io/name"] != service.name
        ):
            continue
        (container,) = pod_spec(workload)["containers"]
        from_secret = {
            e["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert credentials <= from_secret, workload["metadata"]["name"]
    for configmap in configmaps.values():
        assert credentials.isdisjoint(configmap.get("data", {})), configmap["metadata"]["name"]
