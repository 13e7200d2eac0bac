"""SQL of the certificate register: registration, the sealer's claims, lookups."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.sql import dialect_name
from licensing.models import CertificateStatus, Licence, LicenceCertificate

CERTIFICATES: Table = LicenceCertificate.__table__  # type: ignore[assignment]


class CertificateRepository:
    """Reads and writes licence certificates."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, row: dict[str, Any]) -> None:
        """Register a certificate (Core statement: it runs in the licence's own transaction)."""
        await self.session.execute(insert(CERTIFICATES).values(**row))

    async def get(self, certificate_id: uuid.UUID) -> LicenceCertificate | None:
        """One certificate."""
        return await self.session.get(LicenceCertificate, certificate_id)

    async def of_licence(self, licence_id: uuid.UUID) -> LicenceCertificate | None:
        """The certificate of a licence version."""
        return await self.session.scalar(
            select(LicenceCertificate).where(LicenceCertificate.licence_id == licence_id)
        )

    async def of_licences(
        self, licence_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, LicenceCertificate]:
        """The certificates of several licence versions, by licence version id."""
        if not licence_ids:
            return {}
        rows = await self.session.scalars(
            select(LicenceCertificate).where(LicenceCertificate.licence_id.in_(licence_ids))
        )
        return {row.licence_id: row for row in rows}

    async def by_number(self, licence_no: str, version: int) -> LicenceCertificate | None:
        """The certificate of a licence number's version."""
        return await self.session.scalar(
            select(LicenceCertificate).where(
                LicenceCertificate.licence_no == licence_no, LicenceCertificate.version == version
            )
        )

    async def claim_pending(
        self, *, now: datetime, limit: int
    ) -> Sequence[tuple[LicenceCertificate, Licence]]:
        """Pending certificates due now with their licence versions, locked until commit.

        ``FOR UPDATE SKIP LOCKED`` on PostgreSQL: sealers in several workers share the queue and
        never seal one certificate twice. SQLite has a single writer.
        """
        query = (
            select(LicenceCertificate, Licence)
            .join(Licence, Licence.id == LicenceCertificate.licence_id)
            .where(
                LicenceCertificate.status == CertificateStatus.PENDING.value,
                LicenceCertificate.next_attempt_at <= now,
            )
            .order_by(LicenceCertificate.next_attempt_at, LicenceCertificate.id)
            .limit(limit)
        )
        if dialect_name(self.session) == "postgresql":
            query = query.with_for_update(of=LicenceCertificate, skip_locked=True)
        return [(row[0], row[1]) for row in (await self.session.execute(query)).all()]

    async def update(self, certificate_id: uuid.UUID, values: dict[str, Any]) -> None:
        """Record what the sealer did."""
        await self.session.execute(
            update(CERTIFICATES).where(CERTIFICATES.c.id == certificate_id).values(**values)
        )

    async def pending_count(self) -> int:
        """How many certificates wait to be sealed."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(CERTIFICATES)
            .where(CERTIFICATES.c.status == CertificateStatus.PENDING.value)
        )
        return int(count or 0)
