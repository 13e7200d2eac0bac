"""Documents' SQL."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from approval.documents.models import Document
from govshared.sqlbatch import execute_insert

_INSERT_DOCUMENT = insert(Document)  # built once: rows go beside it


class DocumentRepository:
    """The document register."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, row: dict[str, Any]) -> None:
        """Register a document (joins an ``inserts_together`` block)."""
        await execute_insert(self.session, _INSERT_DOCUMENT, row)

    async def for_application(self, application_id: uuid.UUID) -> list[Document]:
        """An application's documents, oldest first."""
        query = (
            select(Document)
            .where(Document.application_id == application_id)
            .order_by(Document.issued_at, Document.id)
        )
        return list((await self.session.scalars(query)).all())

    async def get(self, document_id: uuid.UUID) -> Document | None:
        """One document."""
        return await self.session.get(Document, document_id)

    async def by_number(self, number: str) -> Document | None:
        """The document with this number."""
        return await self.session.scalar(select(Document).where(Document.number == number))
