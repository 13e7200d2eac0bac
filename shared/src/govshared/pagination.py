"""Opaque keyset cursors: the last row's sort key, base64url-encoded JSON."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from govshared.problems import DomainError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, with the cursor of the next page (null at the end)."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Pass as ?cursor= for the next page")


def page_of(items: list[T], *, more: bool, cursor_of: Callable[[T], list[Any]]) -> Page[T]:
    """A page of ``items``; ``more`` (a ``limit + 1``-th row was found) gives it a next cursor."""
    return Page[Any](items=items, next_cursor=encode_cursor(cursor_of(items[-1])) if more else None)


def encode_cursor(values: list[Any]) -> str:
    """Encode the last row's sort key."""
    raw = json.dumps(values, ensure_ascii=False, default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_CURSOR_CHARS = 1024
MAX_CURSOR_STRING = 200


class InvalidCursor(DomainError):
    status = 400
    code = "invalid_cursor"
    title = "分页游标无效"
    title_en = "Invalid pagination cursor"


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """Decode a cursor made by ``encode_cursor`` into its raw JSON values (400 when it is not one)."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor("分页游标过长")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise InvalidCursor(
            "分页游标无效", invalid_params=[{"name": "cursor", "reason": "not a cursor"}]
        ) from exc
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidCursor("分页游标无效", invalid_params=[{"name": "cursor", "reason": "shape"}])
    return values


def decode_keyset(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """Decode a cursor into typed values, one per kind: ``datetime`` (with its offset, given in
    UTC), ``date``, ``uuid.UUID``, ``bool`` or ``str``. A crafted cursor is a 400 problem, never a
    value the query cannot take (a naive or out-of-range time, a NUL, a number for a name)."""
    values = decode_cursor(cursor, len(kinds))
    try:
        return tuple(_typed(value, kind) for value, kind in zip(values, kinds, strict=True))
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidCursor(
            "分页游标无效", invalid_params=[{"name": "cursor", "reason": "values"}]
        ) from exc


def _typed(value: Any, kind: type) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError("bool expected")
        return value
    if not isinstance(value, str) or len(value) > MAX_CURSOR_STRING or "\x00" in value:
        raise TypeError("string expected")
    if kind is datetime:
        at = datetime.fromisoformat(value)
        if at.tzinfo is None:
            raise ValueError("a cursor's time carries its offset")
        return at.astimezone(UTC)
    if kind is date:
        return date.fromisoformat(value)
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is str:
        return value
    raise TypeError(f"unsupported cursor kind {kind!r}")
