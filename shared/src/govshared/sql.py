"""Dialect helpers for the few statements that PostgreSQL and SQLite spell differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    """``postgresql`` or ``sqlite``."""
    return session.get_bind().dialect.name


def insert_ignore(session: AsyncSession, table: Table, *, index_elements: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` in the session's dialect.

    On PostgreSQL a conflicting row that another transaction has not committed yet makes this wait
    for that transaction, then do nothing (or insert, if it rolled back): a safe claim.
    """
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=index_elements)
