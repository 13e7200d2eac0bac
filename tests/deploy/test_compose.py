"""deploy/compose.yml: valid for the compose tool, and wired as issue 8 asks."""

from __future__ import annotations

import pytest

from .support import DEPLOY, SERVICES, ServiceInfo, compose_command, compose_file, run


def test_compose_config_is_valid() -> None:
    command = [*compose_command(), "-f", str(DEPLOY / "compose.yml"), "config", "--quiet"]
    result = run(command, cwd=DEPLOY)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stderr}"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_migration_job_runs_before_web_and_worker(service: ServiceInfo) -> None:
    services = compose_file()["services"]
    migrate = services[f"{service.name}-migrate"]
    assert migrate["command"] == [
        "alembic",
        "-c",
        f"/app/services/{service.name}/alembic.ini",
        "upgrade",
        "head",
    ]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in (service.name, f"{service.name}-worker"):
        assert services[name]["depends_on"][f"{service.name}-migrate"] == {
            "condition": "service_completed_successfully"
        }, name


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_web_and_worker_split(service: ServiceInfo) -> None:
    services = compose_file()["services"]
    web, worker = services[service.name], services[f"{service.name}-worker"]
    assert web["environment"][f"{service.prefix}RUN_WORKERS"] == "false"
    assert web["environment"][f"{service.prefix}MIGRATE_ON_START"] == "false"
    assert "/readyz" in " ".join(web["healthcheck"]["test"])
    assert worker["command"] == ["python", "-m", f"{service.package}.worker"]
    for container in (web, worker, services[f"{service.name}-migrate"]):
        assert container["read_only"] is True
        assert "/tmp" in container["tmpfs"]
        assert container["build"]["dockerfile"] == f"services/{service.name}/Dockerfile"
        url = container["environment"][f"{service.prefix}DATABASE_URL"]
        assert url.startswith(f"postgresql+asyncpg://{service.name}:")
        assert url.endswith(f"@postgres:5432/{service.name}"), "its own database and user"


def test_postgres_gets_a_database_per_service_and_smtp_catcher_is_used() -> None:
    services = compose_file()["services"]
    postgres = services["postgres"]
    assert any("docker-entrypoint-initdb.d" in v for v in postgres["volumes"])
    script = (DEPLOY / "postgres" / "init-databases.sh").read_text()
    assert "for service in approval license notify" in script
    for service in SERVICES:
        assert f"POSTGRES_{service.name.upper()}_PASSWORD" in postgres["environment"]
    notify = services["notify-worker"]["environment"]
    assert notify["NOTIFY_SMTP_HOST"] == "mailpit"
    assert "healthcheck" in services["mailpit"]
