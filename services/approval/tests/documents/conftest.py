"""Helpers of the sealed-document tests: drive an application through the REST API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from approval.catalogue.demo import required_materials
from approval.context import context_of
from govshared.auth import Role
from govshared.testing import Tokens, blank_pdf, random_uscc

ITEM = "JXW-XK-003"  # 无线电台（站）设置审批, 上海市 (310000)
APPLICANT = "上海无线示范有限公司"
BLANK_PDF = blank_pdf()


@dataclass
class Flow:
    """One enterprise's application, moved through its lifecycle by the right roles."""

    client: httpx.AsyncClient
    tokens: Tokens
    uscc: str
    app: FastAPI
    application_id: str = ""

    async def seal(self) -> int:
        """Run the sealer as approval's worker does; how many documents it sealed."""
        return (await context_of(self.app).sealer.run_once()).sealed

    @property
    def applicant(self) -> dict[str, str]:
        return self.tokens.enterprise(self.uscc, name=APPLICANT)

    async def submit(self) -> str:
        response = await self.client.post(
            "/api/v1/applications",
            json={
                "item_code": ITEM,
                "applicant_name": APPLICANT,
                "form": {"station_type": "固定台站"},
            },
            headers=self.applicant,
        )
        assert response.status_code == 201, response.text
        self.application_id = str(response.json()["id"])
        # Every material the guide requires, so that the acceptance notice may say 材料齐全.
        for name in required_materials(ITEM):
            uploaded = await self.client.post(
                f"/api/v1/applications/{self.application_id}/materials",
                data={"name": name},
                files={"file": ("m.pdf", BLANK_PDF, "application/pdf")},
                headers=self.applicant,
            )
            assert uploaded.status_code == 201, uploaded.text
        return self.application_id

    async def act(self, action: str, role: Role | None, **body: Any) -> httpx.Response:
        headers = self.applicant if role is None else self.tokens.staff(role)
        return await self.client.post(
            f"/api/v1/applications/{self.application_id}/{action}", json=body, headers=headers
        )

    async def step(self, action: str, role: Role | None, **body: Any) -> None:
        response = await self.act(action, role, **body)
        assert response.status_code == 200, response.text

    async def documents(self, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The application's documents, once the sealer has sealed what is pending."""
        await self.seal()
        response = await self.client.get(
            f"/api/v1/applications/{self.application_id}/documents",
            headers=headers or self.applicant,
        )
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def pdf(self, document: dict[str, Any]) -> bytes:
        response = await self.client.get(
            f"/api/v1/applications/{self.application_id}/documents/{document['id']}/pdf",
            headers=self.applicant,
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        return response.content


@pytest.fixture
def flow(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> Flow:
    """A fresh enterprise's application flow."""
    return Flow(client=client, tokens=tokens, uscc=random_uscc(), app=app)


@pytest.fixture
async def approved(flow: Flow) -> Flow:
    """An application accepted, reviewed and approved: two documents issued."""
    await flow.submit()
    await flow.step("accept", Role.ACCEPTOR)
    await flow.step("review", Role.REVIEWER, opinion="材料齐全")
    await flow.step("approve", Role.APPROVER, opinion="同意设置")
    return flow
