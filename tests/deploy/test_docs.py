"""The operator's and newcomer's docs stay in step with what they describe: make targets, paths,
Secrets the manifests use, alert metrics, and no reference to a file outside the repository."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from .support import DEPLOY, OVERLAYS, ROOT, SERVICES, of_kind, pod_spec, render_overlay

DOCS = [
    ROOT / "README.md",
    DEPLOY / "README.md",
    ROOT / "docs" / "architecture.md",
    ROOT / "docs" / "performance.md",
]


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.MULTILINE))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_make_target_a_doc_names_exists(doc: object) -> None:
    text = doc.read_text()  # type: ignore[attr-defined]
    named = set(re.findall(r"`make ([a-z][a-z-]*)", text))
    assert named, "the doc names its make targets"
    assert named <= makefile_targets()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_a_doc_names_exists(doc: object) -> None:
    text = doc.read_text()  # type: ignore[attr-defined]
    paths = {
        p.rstrip("/")
        for p in re.findall(r"`((?:deploy|tools|services|shared|docs|tests|bench)/[^`\s]*)`", text)
        if not re.search(r"[<{…*]", p)
    }
    assert paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, missing


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_the_manifests_use_is_documented(overlay: str) -> None:
    readme = (DEPLOY / "README.md").read_text()
    generic = {n: n for n in re.findall(r"Secret `([a-z0-9<>-]+)`", readme)}
    documented = set()
    for name in generic:
        for service in SERVICES:
            documented.add(name.replace("<svc>", service.name))
    used: set[str] = set()
    for kind in ("Deployment", "Job"):
        for doc in of_kind(render_overlay(overlay), kind).values():
            spec = pod_spec(doc)
            for volume in spec.get("volumes", []):
                if "secret" in volume:
                    used.add(volume["secret"]["secretName"])
            for container in spec["containers"]:
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        used.add(ref["name"])
    assert used and used <= documented, sorted(used - documented)


def test_every_metric_of_the_alert_table_has_a_rule() -> None:
    readme = (DEPLOY / "README.md").read_text()
    table = readme[readme.index("## Metrics and alerts") :]
    metrics = set(re.findall(r"^\| `([a-z_]+)", table, re.MULTILINE))
    assert metrics
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    missing = sorted(m for m in metrics if m not in exprs)
    assert not missing, missing


def test_no_doc_or_docstring_cites_a_file_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    citing = [
        path
        for path in tracked
        if path.endswith((".py", ".md", ".yaml", ".yml"))
        and path != "tests/deploy/test_docs.py"
        and "DESIGN" + ".md" in (ROOT / path).read_text(errors="replace")
    ]
    assert not citing, citing
