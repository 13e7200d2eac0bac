"""The service images: hadolint, the conventions of issue 8, and the builder stage run for real."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from .support import ROOT, SERVICES, ServiceInfo, require_tool, run

DOCKERFILES = {s.name: ROOT / "services" / s.name / "Dockerfile" for s in SERVICES}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_hadolint_passes(service: ServiceInfo) -> None:
    hadolint = require_tool("hadolint")
    result = run([hadolint, "--no-color", str(DOCKERFILES[service.name])])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_dockerfile_conventions(service: ServiceInfo) -> None:
    steps = instructions(DOCKERFILES[service.name])
    froms = [args for kw, args in steps if kw == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder and a runtime stage"
    runs = " ".join(args for kw, args in steps if kw == "RUN")
    assert f"uv sync --locked --no-dev --no-cache --package {service.dist}" in runs
    users = [args for kw, args in steps if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "runs as a non-root user"
    (healthcheck,) = [args for kw, args in steps if kw == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    (cmd,) = [args for kw, args in steps if kw == "CMD"]
    assert json.loads(cmd) == ["python", "-m", f"{service.package}.main"], (
        "exec form, uvicorn PID 1"
    )
    env = " ".join(args for kw, args in steps if kw == "ENV")
    assert f"{service.prefix}HOST=0.0.0.0" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env, "nothing written beside the code (read-only root)"


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = (ROOT / ".dockerignore").read_text().split()
    for needed in ("**/.venv", "**/.git", "/data", "services/*/tests"):
        assert needed in patterns


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule, enough for our patterns: the last matching line wins."""
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").lstrip("/")
        candidates = [pattern] + ([pattern[3:]] if pattern.startswith("**/") else [])
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates) or (
            pattern.startswith("**/")
            and any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts)
        ):
            ignored = not negate
    return ignored


def _copy_context(source: str, destination: Path, patterns: list[str]) -> None:
    """COPY <source> as Docker does: the build context minus .dockerignore."""
    src = ROOT / source
    if src.is_file():
        if not _ignored(source, patterns):
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, destination)
        return
    for path in src.rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file() and not _ignored(relative, patterns):
            target = destination / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_builder_stage_installs_only_this_service(service: ServiceInfo, tmp_path: Path) -> None:
    """Replay the builder stage's COPY and RUN uv lines offline; then the image's commands work."""
    patterns = [p for p in (ROOT / ".dockerignore").read_text().split("\n") if p and p[0] != "#"]
    app = tmp_path / "app"
    app.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APPROVAL_", "LICENSE_", "NOTIFY_", "VIRTUAL_ENV", "UV_"))
    }
    env |= {
        "UV_OFFLINE": "1",
        "UV_LINK_MODE": "symlink",  # fast and enough to import from; the image copies
        "UV_PROJECT_ENVIRONMENT": str(app / ".venv"),
        "UV_NO_PROGRESS": "1",
    }
    # `uv run` (and so `make test`) names its own binary in $UV.
    uv_binary = os.environ.get("UV") or shutil.which("uv")
    uv = [uv_binary] if uv_binary else [shutil.which("python3") or "python3", "-m", "uv"]
    steps = instructions(DOCKERFILES[service.name])
    from_lines = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    builder = steps[from_lines[0] : from_lines[1]]
    for keyword, args in builder:
        if keyword == "COPY":
            *sources, target = args.split()
            for source in sources:
                dest = app / target
                if target.endswith("/") or len(sources) > 1:
                    dest = dest / Path(source.rstrip("/")).name if Path(source).is_file() else dest
                if source in ("pyproject.toml", "uv.lock"):
                    dest = app / source
                _copy_context(source.rstrip("/"), dest, patterns)
        elif keyword == "RUN" and "uv sync" in args:
            for part in args.split("&&"):
                words = shlex.split(part)
                if words[:2] == ["uv", "sync"]:
                    # --no-cache keeps the image small; here the local cache stands in for PyPI.
                    args_here = [w for w in words[1:] if w != "--no-cache"]
                    result = run([*uv, *args_here], cwd=app, env=env)
                    assert result.returncode == 0, (
                        f"{part.strip()} failed (offline: the uv cache must hold the locked "
                        f"packages, as after `uv sync`):\n{result.stderr}"
                    )
    python = app / ".venv" / "bin" / "python"
    others = [s.package for s in SERVICES if s is not service]
    probe = (
        "import importlib.util as u, sys; "
        f"sys.exit([m for m in {[*others, 'pytest', 'mypy']!r} if u.find_spec(m)] or None)"
    )
    result = run([str(python), "-c", probe], cwd=tmp_path)
    assert result.returncode == 0, f"other services or dev tools in the image: {result.stderr}"
    # The image's migration one-off, as the Job and compose run it, against SQLite.
    db = tmp_path / "image.db"
    migrate_env = env | {
        f"{service.prefix}DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        f"{service.prefix}DATA_DIR": str(tmp_path / "data"),
    }
    alembic_ini = app / "services" / service.name / "alembic.ini"
    result = run(
        [str(app / ".venv" / "bin" / "alembic"), "-c", str(alembic_ini), "upgrade", "head"],
        cwd=tmp_path,
        env=migrate_env,
    )
    assert result.returncode == 0, result.stderr
    # The web entry point imports with only the image's files (demo data, migrations found).
    result = run(
        [str(python), "-c", f"import {service.package}.main, {service.package}.worker"],
        cwd=tmp_path,
        env=migrate_env,
    )
    assert result.returncode == 0, result.stderr


def test_every_service_has_an_image() -> None:
    services = {p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")}
    assert services == set(DOCKERFILES)
    assert all(path.exists() for path in DOCKERFILES.values())
