"""What license's requests and workers share, built once by the lifespan (``main.create_app``).

Dependencies read it through ``get_context``; tests replace a part of it with
``app.dependency_overrides[get_context]`` (e.g. ``dataclasses.replace(context, rng=...)``) or read
its workers with ``context_of(app)``, never through attributes looked up by name.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.outbox import OutboxRelay, OutboxWriter
from govshared.storage import Storage
from licensing.certificates.sealer import CertificateSealer
from licensing.certificates.service import Sealing
from licensing.config import Settings
from licensing.licences.policy import LicencePolicy
from licensing.worker import LicenceTimers


@dataclass(frozen=True, slots=True)
class LicenseContext:
    """The service's settings, ports and workers."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    outbox: OutboxWriter
    sealing: Sealing
    policy: LicencePolicy
    evidence_storage: Storage
    relay: OutboxRelay
    timers: LicenceTimers
    sealer: CertificateSealer
    # 双随机 draws must not be predictable by the enterprises drawn.
    rng: random.Random = field(default_factory=random.SystemRandom)


def context_of(app: FastAPI) -> LicenseContext:
    """The context the app's lifespan built (it must be running)."""
    context = app.state.context
    assert isinstance(context, LicenseContext), "the app's lifespan has not started"
    return context


async def get_context(request: Request) -> LicenseContext:
    """The app's context, as a dependency (overridable in tests; async: FastAPI would run a
    plain function in its thread pool)."""
    return context_of(request.app)
