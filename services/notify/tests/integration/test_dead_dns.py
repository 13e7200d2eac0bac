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
