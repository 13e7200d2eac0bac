"""Opaque keyset cursors: the last row's sort key, base64url-encoded JSON."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from govshared.problems import ValidationFailed

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


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """Decode a cursor made by ``encode_cursor`` (422 problem when it is not one)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            "分页游标无效", invalid_params=[{"name": "cursor", "reason": str(exc)}]
        ) from exc
    if not isinstance(values, list) or len(values) != arity:
        raise ValidationFailed(
            "分页游标无效", invalid_params=[{"name": "cursor", "reason": "shape"}]
        )
    return values
