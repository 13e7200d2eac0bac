"""Fixtures of the signing tests: the app's development CA and a phone holding a seal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# tools/ (the phone) lives at the repository root, as the cross-service tests find it.
ROOT = Path(__file__).resolve().parents[4]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import pytest  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from approval.context import context_of  # noqa: E402
from approval.signing.config import dev_ca_directory  # noqa: E402
from approval.signing.routes import signing_now  # noqa: E402
from govshared.signing.devca import DevCA, IssuedSeal  # noqa: E402
from govshared.testing import Tokens, random_uscc  # noqa: E402
from tools.phone import answer  # noqa: E402

NAME = "上海临港示范有限公司"


@pytest.fixture
def ca(app: FastAPI) -> DevCA:
    """The CA the app trusts in development (made in its data folder on first use)."""
    return DevCA(dev_ca_directory(app.state.settings.data_dir))


@pytest.fixture
def crl_fresh(app: FastAPI) -> Callable[[], None]:
    """Drop the app's cached CRL (as its cache time running out would)."""

    def invalidate() -> None:
        verifier = context_of(app).verifier()
        if verifier is not None:
            for _, source in verifier._anchors.values():
                source.invalidate()

    return invalidate


@dataclass
class Phone:
    """An enterprise with its token and a seal on its phone."""

    uscc: str
    name: str
    headers: dict[str, str]
    seal: IssuedSeal

    def answer(self, session: dict[str, Any], **overrides: str) -> dict[str, str]:
        body = answer(
            session, private_key=self.seal.private_key, certificate_pem=self.seal.certificate_pem
        )
        body.update(overrides)
        return body

    async def sign(self, client: httpx.AsyncClient, session: dict[str, Any]) -> httpx.Response:
        return await client.post(
            f"/api/v1/signing-sessions/{session['id']}/signature",
            json=self.answer(session),
            headers=self.headers,
        )


@pytest.fixture
def phone(ca: DevCA, tokens: Tokens) -> Phone:
    """A fresh enterprise holding a valid 公章."""
    uscc = random_uscc()
    return Phone(uscc, NAME, tokens.enterprise(uscc), ca.issue_seal(uscc=uscc, name=NAME))


@pytest.fixture
def signing_clock(app: FastAPI) -> Iterator[list[datetime]]:
    """Set ``clock[0]`` to move the signing sessions' time (restored after the test)."""
    clock: list[datetime] = []
    app.dependency_overrides[signing_now] = lambda: lambda: clock[0] if clock else datetime.now(UTC)
    yield clock
    del app.dependency_overrides[signing_now]
