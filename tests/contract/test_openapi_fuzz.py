"""Schemathesis against each running service's OpenAPI: no 5xx, no response that breaks the schema.

Each service runs as a real process on loopback (SQLite and PostgreSQL); examples are bounded so that
CI stays fast. Requests carry an enterprise token, so role-guarded endpoints are exercised up to their
permission check, and the public ones all the way.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from govshared.testing import BACKENDS, Tokens, drop_postgres_database, make_database
from tests.e2e.conftest import free_port
from tools.suite import SERVICES, ServiceProcess, suite_env

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(
    scope="module", params=list(itertools.product(SERVICES, BACKENDS)), ids=lambda p: "-".join(p)
)
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Tokens]]:
    """One service on one backend, with the other two absent (their calls fail as 503)."""
    name, backend = request.param
    work: Path = tmp_path_factory.mktemp(f"fuzz-{name}-{backend}")
    tokens = Tokens(work / "keys")
    ports = {n: free_port() for n in SERVICES}
    _, prefix, _ = SERVICES[name]
    url = asyncio.run(make_database(backend, prefix=f"fuzz_{name}", directory=work))
    env = {
        **suite_env(data_dir=work, ports=ports)[name],
        f"{prefix}DATABASE_URL": url,
        **tokens.environment(prefix),
        f"{prefix}HTTP_TIMEOUT_SECONDS": "1",
    }
    proc = ServiceProcess(name, ports[name], env, log_path=work / f"{name}.log")
    proc.start()
    try:
        proc.wait_ready()
        yield proc.url, tokens
    finally:
        proc.stop()
        if backend == "postgresql":
            asyncio.run(drop_postgres_database(url))


def test_no_server_errors_and_schema_conformance(running: tuple[str, Tokens]) -> None:
    base, tokens = running
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = tokens.enterprise("91350100M000100Y43")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the service publishes no operations"
    calls = 0
    for operation in operations:

        @settings(
            max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
    assert calls >= len(operations)
