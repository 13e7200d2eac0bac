"""Typed client of the license service: reform modes (with a short cache) and licences.

Every call refuses to run while the request's database transaction is open
(``govshared.db.no_transaction_open``), a cached answer too: whether a request holds a transaction
across a call to license never depends on a cache being warm.
"""

from __future__ import annotations

import time
from datetime import date

import httpx
from pydantic import BaseModel

from govshared.auth import ServiceTokenSource
from govshared.contracts import LicenceSummary, ReformModeAnswer
from govshared.db import no_transaction_open
from govshared.problems import DependencyUnavailable


class LicenseClient:
    """Asks license how an item is handled; a down license is a clear 503, never a hang."""

    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.AsyncClient,
        tokens: ServiceTokenSource,
        cache_seconds: float,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = http
        self._tokens = tokens
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str, date], tuple[float, ReformModeAnswer | None]] = {}

    async def reform_mode(
        self, *, item_code: str, jurisdiction: str, on: date
    ) -> ReformModeAnswer | None:
        """The mode in force, or None when the item is not in the reform catalogue."""
        no_transaction_open("license: reform mode")
        key = (item_code, jurisdiction, on)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = await self._http.get(
                f"{self._base}/api/v1/reform-items/{item_code}/mode",
                params={"jurisdiction": jurisdiction, "on": on.isoformat()},
                headers={"Authorization": f"Bearer {self._tokens.token_for('license')}"},
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"证照服务不可用，暂时无法确定事项的改革方式：{type(exc).__name__}",
                dependency="license",
            ) from exc
        if response.status_code == 404:
            answer = None
        elif response.status_code == 200:
            answer = ReformModeAnswer.model_validate_json(response.content)
        else:
            raise DependencyUnavailable(
                f"证照服务返回异常状态 {response.status_code}", dependency="license"
            )
        if self._cache_seconds > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self._cache_seconds, answer)
        return answer

    async def commitment_eligibility(self, *, uscc: str) -> Eligibility:
        """May this enterprise use the 告知承诺 route? Never cached: a revocation bars at once."""
        no_transaction_open("license: commitment eligibility")
        response = await self._get(f"/api/v1/enterprises/{uscc}/commitment-eligibility")
        if response.status_code != 200:
            raise DependencyUnavailable(
                f"证照服务返回异常状态 {response.status_code}", dependency="license"
            )
        return Eligibility.model_validate_json(response.content)

    async def valid_licences(self, *, uscc: str) -> list[LicenceSummary]:
        """The enterprise's valid e-licences (减证便民), first page of up to 100."""
        no_transaction_open("license: valid licences")
        response = await self._get(
            f"/api/v1/enterprises/{uscc}/licences", {"status": "valid", "limit": "100"}
        )
        if response.status_code != 200:
            raise DependencyUnavailable(
                f"证照服务返回异常状态 {response.status_code}", dependency="license"
            )
        return [LicenceSummary.model_validate(i) for i in response.json()["items"]]

    async def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        try:
            return await self._http.get(
                f"{self._base}{path}",
                params=params,
                headers={"Authorization": f"Bearer {self._tokens.token_for('license')}"},
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"证照服务不可用：{type(exc).__name__}", dependency="license"
            ) from exc


class Eligibility(BaseModel):
    """The part of license's commitment-eligibility answer approval relies on."""

    eligible: bool
    reasons: list[str] = []
