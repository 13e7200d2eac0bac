"""``Idempotency-Key`` support: a retried POST returns the first result, never a second effect.

The key is claimed with ``INSERT ... ON CONFLICT DO NOTHING`` in the same transaction as the effect,
carrying the response already: one statement on the hot path. A concurrent duplicate waits on
PostgreSQL for the first transaction and then reads its stored response; on SQLite transactions are
serialised anyway.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Column, Insert, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from govshared.auth import Principal
from govshared.db import UTCDateTime
from govshared.problems import IdempotencyKeyReused, ValidationFailed
from govshared.sql import insert_ignore
from govshared.sqlbatch import execute_insert

MAX_KEY_LENGTH = 200


def idempotency_table(metadata: MetaData) -> Table:
    """The ``idempotency_keys`` table on a service's metadata."""
    return Table(
        "idempotency_keys",
        metadata,
        Column("owner", String(200), primary_key=True),
        Column("key", String(MAX_KEY_LENGTH), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("response_body", Text, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
    )


class RequestHash(str):
    """A request's fingerprint (the hex digest), which can also give its earlier form
    (``previous``) so that a retry of a request stored before the form changed still matches."""

    method: str
    path: str
    body: Any

    def previous(self) -> str:
        """The fingerprint as computed until 2026-12: the standard library's JSON (sorted keys,
        ``", "`` and ``": "`` separators), five times slower than orjson's; only a retry that
        does not match the current form pays for it."""
        return _stdlib_fingerprint(self.method, self.path, self.body)


def request_fingerprint(method: str, path: str, body: Any) -> RequestHash:
    """SHA-256 of the request's method, path and canonical JSON body: its keys sorted at every
    level, compact, UTF-8 (orjson). Two requests with the same content match whatever their key
    order or spacing (a client that rebuilds its JSON from a hash map may reorder it on a retry);
    a request whose content differs does not."""
    try:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the standard library's form
        digest = _stdlib_fingerprint(method, path, body)
    else:
        digest = hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()
    fingerprint = RequestHash(digest)
    fingerprint.method, fingerprint.path, fingerprint.body = method, path, body
    return fingerprint


def _stdlib_fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def same_request(stored: str, request_hash: str) -> bool:
    """Whether a stored fingerprint is this request's (in its current or its earlier form)."""
    if stored == request_hash:
        return True
    return isinstance(request_hash, RequestHash) and stored == request_hash.previous()


def key_owner(principal: Principal, route: str) -> str:
    """Whose ``Idempotency-Key`` it is: the caller, the enterprise it acts for, and the route.

    A key is the client's, and a client may act for several enterprises (an agent's ``sub`` with a
    token per USCC) or call several routes: scoped to ``sub`` alone, a retry for enterprise B with
    the key of A's filing would get A's application back. A digest, so that a long ``sub`` fits.
    """
    return _owner_digest(
        principal.role.value, principal.subject, principal.uscc, principal.jurisdiction, route
    )


@lru_cache(maxsize=4096)
def _owner_digest(
    role: str, subject: str, uscc: str | None, jurisdiction: str | None, route: str
) -> str:
    """``key_owner``'s digest, remembered: a caller's keys all have the same owner per route, and
    its JSON and SHA-256 need not be made again for every keyed request."""
    scope = json.dumps([role, subject, uscc, jurisdiction, route], ensure_ascii=False)
    return hashlib.sha256(scope.encode()).hexdigest()


def idempotency_openapi(description: str) -> dict[str, Any]:
    """The ``Idempotency-Key`` header declared for OpenAPI, for a route that reads it with
    ``idempotency_key`` (``openapi_extra=idempotency_openapi(…)``)."""
    parameter = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    }
    return {"parameters": [parameter]}


def idempotency_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key``, validated (422 problem when malformed).

    The hot write routes read it here rather than through a FastAPI ``Header`` parameter, and
    declare it with ``idempotency_openapi``: FastAPI's parameter solving cost a submission 3% of
    its CPU for this one header (callgrind).
    """
    return check_key(request.headers.get("idempotency-key"))


def check_key(key: str | None) -> str | None:
    """Validate an ``Idempotency-Key`` header value."""
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(f"Idempotency-Key 须为1至{MAX_KEY_LENGTH}个可打印字符")
    return key


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The response recorded for a key."""

    status_code: int
    body: Any


async def claim_or_replay(
    session: AsyncSession,
    table: Table,
    *,
    owner: str,
    key: str,
    request_hash: str,
    status_code: int,
    body: Any,
) -> StoredResponse | None:
    """Record ``body`` as the key's response; or return the response an earlier request stored.

    None means the key is ours: go on and make the change in this transaction.
    """
    if await _insert(session, table, owner, key, request_hash, status_code, body):
        return None
    stored = await replay(session, table, owner=owner, key=key, request_hash=request_hash)
    assert stored is not None
    return stored


async def replay(
    session: AsyncSession, table: Table, *, owner: str, key: str, request_hash: str
) -> StoredResponse | None:
    """The response stored for the key, if any (422 problem when the request differs)."""
    row = (
        await session.execute(
            select(table.c.request_hash, table.c.status_code, table.c.response_body).where(
                table.c.owner == owner, table.c.key == key
            )
        )
    ).one_or_none()
    if row is None:
        return None
    if not same_request(row.request_hash, request_hash):
        raise IdempotencyKeyReused("同一幂等键已用于内容不同的请求，请使用新的 Idempotency-Key")
    return StoredResponse(status_code=row.status_code, body=json.loads(row.response_body))


async def _insert(
    session: AsyncSession,
    table: Table,
    owner: str,
    key: str,
    request_hash: str,
    status_code: int,
    body: Any,
) -> bool:
    # Parameters go beside the statement, not into it, so its compiled form is cached.
    result = await session.execute(
        insert_ignore(session, table, index_elements=["owner", "key"]),
        {
            "owner": owner,
            "key": key,
            "request_hash": str(request_hash),
            "status_code": status_code,
            "response_body": json.dumps(body, ensure_ascii=False, default=str),
            "created_at": datetime.now(UTC),
        },
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def claim(
    session: AsyncSession,
    table: Table,
    *,
    owner: str,
    key: str,
    request_hash: str,
    status_code: int,
    body: Any,
) -> bool:
    """Record the key's response; False when a concurrent request with the key got there first."""
    return await _insert(session, table, owner, key, request_hash, status_code, body)


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """A key's claim, carrying the response already serialised (``body_json``)."""

    owner: str
    key: str
    request_hash: str
    status_code: int
    body_json: str


@lru_cache(maxsize=16)
def _plain_insert(table: Table) -> Insert:
    return insert(table)


async def claim_in_batch(session: AsyncSession, table: Table, claim: KeyClaim) -> None:
    """Add the key's claim to the session's ``inserts_together`` batch as a plain INSERT: a key
    already claimed fails the whole statement (``IntegrityError``), nothing of it written; then
    ``replay_after_conflict``. On PostgreSQL a claim by a transaction still running waits for it.
    """
    await execute_insert(
        session,
        _plain_insert(table),
        {
            "owner": claim.owner,
            "key": claim.key,
            "request_hash": str(claim.request_hash),
            "status_code": claim.status_code,
            "response_body": claim.body_json,
            "created_at": datetime.now(UTC),
        },
    )


async def replay_after_conflict(
    session: AsyncSession, table: Table, claim: KeyClaim
) -> StoredResponse | None:
    """After a batch with ``claim_in_batch`` failed: the response stored for the key (422 problem
    when the request differs), or None when the key is not there (the failure was another's)."""
    if session.in_transaction():  # the batch ran in the session's (failed) transaction
        await session.rollback()
    return await replay(
        session, table, owner=claim.owner, key=claim.key, request_hash=claim.request_hash
    )
