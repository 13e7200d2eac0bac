"""Each service's database made unreachable for a few seconds under a small load: every answer is
a success or a 503 ``database_unavailable`` problem with Retry-After, no client loses its
connection, the first success follows the database's return within a second, and nothing
written is lost or written twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from govshared.testing import cut_off_postgres_database, random_uscc
from tests.e2e.test_slice import BODY, inbox_numbers
from tests.faults.conftest import RETRY_AFTER_SECONDS, FaultSuite, Load, Outcome, wait_until

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 2.0


def _submitter(
    suite: FaultSuite, uscc: str
) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
    # No Idempotency-Key: the submission's lone autocommitted statement, the path a dead pooled
    # connection used to poison.
    headers = suite.tokens.enterprise(uscc)
    url = f"{suite.url('approval')}/api/v1/applications"
    return lambda client: client.post(url, json=BODY, headers=headers)


def _getter(
    url: str, headers: dict[str, str] | None = None
) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
    return lambda client: client.get(url, headers=headers or {})


async def _outage(suite: FaultSuite, name: str, load: Load) -> float:
    """Cut the service's database off under the load and restore it; when it came back."""
    await asyncio.sleep(0.5)
    await cut_off_postgres_database(suite.databases[name], down=True)
    await asyncio.sleep(OUTAGE_SECONDS)
    await cut_off_postgres_database(suite.databases[name], down=False)
    back = time.monotonic()
    await asyncio.sleep(1.5)
    await load.stop()
    return back


def _check(load: Load, clients: set[str], back: float) -> list[Outcome]:
    """The answers of ``clients`` (the service whose database went away): the issue's promises."""
    mine = [o for o in load.outcomes if o.client in clients]
    assert not [o for o in mine if o.error], "a request got no response"
    for outcome in mine:
        if outcome.status is not None and outcome.status < 300:
            continue
        assert outcome.status == 503, outcome
        assert outcome.content_type == "application/problem+json", outcome
        assert outcome.code == "database_unavailable", outcome
        assert outcome.retry_after == str(RETRY_AFTER_SECONDS), outcome
    assert any(o.status == 503 for o in mine), "the outage was not seen: the test proves nothing"
    # Every client kept its one keep-alive connection through the outage.
    assert {c: load.connects[c] for c in clients} == dict.fromkeys(clients, 1)
    # Once the database is back, no request fails: the pool holds no dead connection.
    assert all(o.status < 300 for o in mine if o.sent >= back and o.status is not None)
    first = min(o.done for o in mine if o.status is not None and o.status < 300 and o.done >= back)
    timeline = [
        (o.client, round(o.sent - back, 3), round(o.done - back, 3), o.status)
        for o in sorted(mine, key=lambda o: o.sent)
        if -1.0 <= o.done - back <= 2.0
    ]
    assert first - back <= 1.0, f"first success {first - back:.2f} s after the return: {timeline}"
    return mine


async def _arrived_once(
    client: httpx.AsyncClient, suite: FaultSuite, uscc: str, numbers: list[str]
) -> None:
    """Each application reaches the enterprise's inbox, once."""

    async def arrived() -> bool:
        found = await inbox_numbers(client, suite, uscc)  # type: ignore[arg-type]
        return all(any(n in f for f in found) for n in numbers)

    await wait_until(arrived, within=20)
    found = await inbox_numbers(client, suite, uscc)  # type: ignore[arg-type]
    assert all(sum(n in f for f in found) == 1 for n in numbers)


async def _stored_once(suite: FaultSuite, uscc: str, created: list[Outcome]) -> list[str]:
    """Every 201 is one application in approval's database, and there are no others."""
    rows = await suite.query(
        "approval",
        "SELECT id::text, application_no FROM applications WHERE applicant_uscc = $1",
        uscc,
    )
    ids = sorted(str(o.body["id"]) for o in created)
    assert sorted(r["id"] for r in rows) == ids
    pending = await suite.query(
        "approval",
        "SELECT count(*) AS n FROM outbox_events WHERE payload LIKE $1 AND destination = 'notify'",
        f"%{uscc}%",
    )
    assert pending[0]["n"] == len(ids)  # one event each for notify, none twice
    return [r["application_no"] for r in rows]


async def test_approval_database_outage(faulty: FaultSuite) -> None:
    uscc = random_uscc()
    load = Load()
    for n in range(3):
        load.start(f"submit-{n}", _submitter(faulty, uscc))
    load.start(
        "list",
        _getter(f"{faulty.url('approval')}/api/v1/applications", faulty.tokens.enterprise(uscc)),
    )
    back = await _outage(faulty, "approval", load)
    mine = _check(load, {"submit-0", "submit-1", "submit-2", "list"}, back)
    created = [o for o in mine if o.status == 201]
    numbers = await _stored_once(faulty, uscc, created)
    async with httpx.AsyncClient(timeout=10) as client:
        await _arrived_once(client, faulty, uscc, numbers)
    assert "Exception in ASGI application" not in faulty.logs("approval")


async def test_notify_database_outage(faulty: FaultSuite) -> None:
    """Reads of the inbox answer 503 meanwhile; the events approval sent keep coming once it is
    back, each into the inbox once."""
    uscc = random_uscc()
    headers = faulty.tokens.enterprise(uscc)
    load = Load()
    for n in range(2):
        load.start(f"inbox-{n}", _getter(f"{faulty.url('notify')}/api/v1/inbox", headers))
    load.start("submit", _submitter(faulty, uscc))
    back = await _outage(faulty, "notify", load)
    _check(load, {"inbox-0", "inbox-1"}, back)
    submitted = [o for o in load.outcomes if o.client == "submit"]
    assert all(o.status == 201 for o in submitted), "approval does not depend on notify's database"
    numbers = await _stored_once(faulty, uscc, submitted)
    async with httpx.AsyncClient(timeout=10) as client:
        await _arrived_once(client, faulty, uscc, numbers)
    assert "Exception in ASGI application" not in faulty.logs("notify")


async def test_license_database_outage(faulty: FaultSuite) -> None:
    load = Load()
    for n in range(3):
        load.start(f"reform-{n}", _getter(f"{faulty.url('license')}/api/v1/reform-items"))
    back = await _outage(faulty, "license", load)
    _check(load, {"reform-0", "reform-1", "reform-2"}, back)
    assert "Exception in ASGI application" not in faulty.logs("license")
