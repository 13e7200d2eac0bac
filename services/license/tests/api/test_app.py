"""The service shell: health, readiness at the migrated head, and an OpenAPI that declares errors."""

from __future__ import annotations

import httpx
from alembic.config import Config
from alembic.script import ScriptDirectory

from licensing.main import ALEMBIC_INI


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    # The one head of the migration chain, whichever revision that is today.
    head = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_heads()
    assert [ready.json()["revision"]] == head


async def test_openapi_declares_problem_responses(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "Problem" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        # The licence type catalogue takes no input and cannot fail.
        if not path.startswith("/api/v1") or path == "/api/v1/licence-types":
            continue
        for method, operation in operations.items():
            errors = [code for code in operation["responses"] if code.startswith(("4", "5"))]
            assert errors, f"{method.upper()} {path} declares no error responses"
    mode = schema["paths"]["/api/v1/reform-items/{item_code}/mode"]["get"]
    assert {"401", "404", "422"} <= set(mode["responses"])
    # Any operation may find its database away (deploy/README.md, Outages).
    assert "database_unavailable" in mode["responses"]["503"]["description"]
    assert "503" not in schema["paths"]["/healthz"]["get"]["responses"]
