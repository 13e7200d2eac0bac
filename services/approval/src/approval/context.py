"""What approval's requests and workers share, built once by the lifespan (``main.create_app``).

Routes and dependencies read it through ``get_context`` (``Context``, below); tests pin the
service's date with ``context_of(app).today.pin(day)`` and replace other parts with
``app.dependency_overrides[get_context]``, never through attributes looked up by name. It is the
one thing the lifespan puts on ``app.state`` besides what ``govshared.app`` sets there (settings,
engine, sessionmaker, token verifier).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from approval.calendar.service import china_today
from approval.clients.license import LicenseClient
from approval.config import Settings
from approval.documents.sealer import DocumentSealer
from approval.documents.service import Sealing
from approval.signing.config import VerifierOnFirstUse
from approval.worker import TimerWorker
from govshared.outbox import OutboxRelay, OutboxWriter
from govshared.storage import Storage


class ChinaDay:
    """Today's date in China, the day every statutory clock counts in; tests pin it."""

    __slots__ = ("_pinned",)

    def __init__(self) -> None:
        self._pinned: date | None = None

    def __call__(self) -> date:
        return self._pinned or china_today()

    def pin(self, day: date | None) -> None:
        """Hold the date at ``day`` (None: follow the real date again)."""
        self._pinned = day


@dataclass(frozen=True, slots=True)
class ApprovalContext:
    """The service's settings, clients, ports and workers."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    license_client: LicenseClient
    outbox: OutboxWriter
    today: ChinaDay
    storage: Storage
    sealing: Sealing
    relay: OutboxRelay
    timers: TimerWorker
    sealer: DocumentSealer
    # Checks the signatures applicants make on their phones (approval.signing).
    verifier: VerifierOnFirstUse


def context_of(app: FastAPI) -> ApprovalContext:
    """The context the app's lifespan built (it must be running)."""
    context = app.state.context
    assert isinstance(context, ApprovalContext), "the app's lifespan has not started"
    return context


async def get_context(request: Request) -> ApprovalContext:
    """The app's context, as a dependency (overridable in tests; async: FastAPI would run a
    plain function in its thread pool)."""
    return context_of(request.app)


# The routes' one way to the service's wiring (a dependency: tests may override ``get_context``).
Context = Annotated[ApprovalContext, Depends(get_context)]
