"""License down: a submission gets a clear 503 problem, quickly, and nothing is stored."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx
from sqlalchemy import func, select

from approval.config import Settings
from approval.main import create_app
from approval.models import Application
from govshared.testing import Tokens, problem, random_uscc


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_license_down_is_a_503_problem(
    settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    settings = settings_factory(license_url=f"http://127.0.0.1:{_closed_port()}")
    app = create_app(settings)
    uscc = random_uscc()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
            started = time.monotonic()
            response = await client.post(
                "/api/v1/applications",
                json={"item_code": "JXW-XK-004", "applicant_name": "上海示范有限公司"},
                headers=tokens.enterprise(uscc),
            )
            assert time.monotonic() - started < 5
        body = problem(response)
        assert response.status_code == 503
        assert body["code"] == "dependency_unavailable"
        assert body["dependency"] == "license"
        async with app.state.sessionmaker() as s:
            count = await s.scalar(
                select(func.count())
                .select_from(Application)
                .where(Application.applicant_uscc == uscc)
            )
        assert count == 0
