"""Webhook names whose DNS never answers hold up no other channel.

A name server that does not answer keeps the system resolver's thread for its whole timeout (the
wait for the answer is given up after ``resolve_timeout``, the thread is not). The asyncio loop's
default executor is what every other lookup goes through: the SMTP server's name, the SMS
gateway's, approval's for the proof of service, the database host's for a new connection. Webhook
names are looked up in threads of their own, so that enterprises' dead domains cannot take those.

The resolver stand-in is the C library's ``getaddrinfo`` made to wait, for the dead domain only,
as one whose name servers do not answer does.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.events import EventType
from govshared.testing import Tokens, random_uscc

from ..conftest import MailSink, application_event, make_settings, post_events, replica
from .test_channels import set_profile
from .test_leases import rows_of

DEAD_DOMAIN = "dead-dns.example"
NO_ANSWER_SECONDS = 4.0


@pytest.fixture
def dead_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Names under ``DEAD_DOMAIN`` have no address yet (answered at once); once the returned
    function is called, their name servers stop answering: a lookup waits
    ``NO_ANSWER_SECONDS``, then fails as unanswered. Other names resolve as ever."""
    real = socket.getaddrinfo
    dead = threading.Event()

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(DEAD_DOMAIN):
            if not dead.is_set():
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            time.sleep(NO_ANSWER_SECONDS)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield dead.set


async def test_webhooks_on_a_dead_domain_hold_up_no_email(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    database_url: str,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    tmp_path: Path,
    dead_dns: Callable[[], None],
) -> None:
    sink, smtp_port = smtp
    run = uuid.uuid4().hex[:8]
    burst = []
    for n in range(3):  # three enterprises, four webhooks each, all on the dead domain
        uscc = random_uscc()
        for m in range(4):
            url = f"https://erp{m}-{run}-{n}.{DEAD_DOMAIN}/onestop"
            # Registered while the domain's servers answered (a name without an address yet is
            # accepted: every delivery looks it up again).
            created = await client.post(
                "/api/v1/webhooks", json={"url": url}, headers=tokens.enterprise(uscc)
            )
            assert created.status_code == 201, created.text
        burst.append(application_event(EventType.APPLICATION_SUBMITTED, uscc))
    assert (await post_events(client, tokens, burst)).status_code == 200

    other = random_uscc()
    address = f"dns-{run}@example.com"
    await set_profile(client, tokens, other, email=address)
    theirs = application_event(EventType.APPLICATION_ACCEPTED, other)
    assert (await post_events(client, tokens, [theirs])).status_code == 200

    dead_dns()  # the domain's name servers stop answering
    settings = make_settings(
        database_url,
        tokens,
        tmp_path,
        smtp_host="localhost",  # a name, as in production: the SMTP server is looked up too
        smtp_port=smtp_port,
        http_timeout_seconds=0.5,  # an email attempt has 2 s in all, a lookup 0.5 s
        delivery_base_backoff_seconds=30.0,
    )
    async with replica(app, settings) as worker:
        started = time.monotonic()
        await worker.run_once()
        elapsed = time.monotonic() - started
    [email] = [r for r in await rows_of(session, [theirs["id"]]) if r.channel == "email"]
    assert email.status == "delivered", email.last_error
    assert len(sink.to(address)) == 1
    assert elapsed < NO_ANSWER_SECONDS - 1


async def test_lookups_of_one_dead_name_share_one_thread(
    dead_dns: Callable[[], None],
) -> None:
    """An enterprise's burst to a dead domain (and its retries) waits for one lookup of the name,
    holding one of the webhook DNS threads, not all of them: two such enterprises leave the other
    enterprises' names to resolve at once."""
    import asyncio

    from notify.channels.egress import EgressPolicy, system_resolve

    dead_dns()
    # Lookups an earlier test left waiting for its dead names end first (the threads are the
    # process's).
    await asyncio.sleep(NO_ANSWER_SECONDS + 0.5)
    policy = EgressPolicy(allow_loopback=True, resolve_timeout=0.5)
    names = [f"hooks-{uuid.uuid4().hex[:6]}.{DEAD_DOMAIN}" for _ in range(2)]
    lookups = [policy.resolve(names[n % 2], 443, resolver=system_resolve) for n in range(20)]
    started = time.monotonic()
    outcomes = await asyncio.gather(*lookups, return_exceptions=True)
    assert all(isinstance(o, LookupError) for o in outcomes)  # given up after 0.5 s
    assert time.monotonic() - started < 2.0
    # Two threads are still waiting for the dead names; a healthy name resolves at once.
    started = time.monotonic()
    answers = await policy.resolve("localhost", 443, resolver=system_resolve)
    assert answers and time.monotonic() - started < 0.5
    # Once the servers' silence is known, the name is not asked again for a while: a retry
    # fails at once instead of taking a thread for the resolver's whole timeout.
    await asyncio.sleep(NO_ANSWER_SECONDS)
    started = time.monotonic()
    with pytest.raises(LookupError):
        await policy.resolve(names[0], 443, resolver=system_resolve)
    assert time.monotonic() - started < 0.2
