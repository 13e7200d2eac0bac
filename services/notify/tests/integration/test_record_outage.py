"""A result the database could not take at once is recorded when it is back, within the lease:
a failover of a second while a batch is being sent no longer makes every notice of the batch go
out twice (left claimed, the rows were taken back after the lease and sent again).

PostgreSQL only: a failover, a network cut, a restart of the server (the embedded SQLite file has
none of these)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import select

from govshared.events import EventType
from govshared.testing import Tokens, cut_off_postgres_database, migrated_database, random_uscc
from notify.context import context_of
from notify.main import ALEMBIC_INI
from notify.models import Delivery

from ..conftest import application_event, free_port, make_settings, post_events, running_app
from .test_leases import SlowMail


class WatchedMail(SlowMail):
    """The slow SMTP server, telling when a message has begun (its deliveries are claimed)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.began = threading.Event()

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.began.set()
        return await super().handle_MAIL(server, session, envelope, address, options)


async def test_a_result_recorded_after_a_database_blip_is_not_sent_again(
    tokens: Tokens, tmp_path: Path
) -> None:
    sink = WatchedMail(0.1)  # 0.3 s a message
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        async with migrated_database(
            "postgresql", prefix="notify_blip", directory=tmp_path, alembic_ini=ALEMBIC_INI
        ) as url:
            settings = make_settings(
                url,
                tokens,
                tmp_path,
                smtp_host="127.0.0.1",
                smtp_port=controller.port,
                http_timeout_seconds=0.3,  # an email attempt has 1.2 s in all
                delivery_lease_seconds=3.0,
                delivery_base_backoff_seconds=30.0,
            )
            async with running_app(settings) as app:
                uscc = random_uscc()
                address = f"blip-{uuid.uuid4().hex[:8]}@example.com"
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://n.test") as c:
                    saved = await c.put(
                        "/api/v1/preferences",
                        json={"email": address},
                        headers=tokens.enterprise(uscc),
                    )
                    assert saved.status_code == 200, saved.text
                    event = application_event(EventType.APPLICATION_ACCEPTED, uscc)
                    assert (await post_events(c, tokens, [event])).status_code == 200

                worker = context_of(app).delivery_worker
                started = time.monotonic()
                batch = asyncio.create_task(worker.run_once())
                assert await asyncio.to_thread(sink.began.wait, 5)
                # The email is on its way: the database fails over for most of a second.
                await cut_off_postgres_database(url, down=True)
                await asyncio.sleep(0.8)
                await cut_off_postgres_database(url, down=False)
                await asyncio.gather(batch, return_exceptions=True)

                # Past the lease, the next pass finds nothing to send again.
                await asyncio.sleep(
                    max(0.0, settings.delivery_lease_seconds + 0.5 - (time.monotonic() - started))
                )
                for _ in range(3):
                    try:
                        await worker.run_once()
                        break
                    except Exception:  # a pooled connection the cut-off closed
                        await asyncio.sleep(0.2)
                async with app.state.sessionmaker() as session:
                    [email] = (
                        await session.scalars(
                            select(Delivery).where(
                                Delivery.event_id == event["id"], Delivery.channel == "email"
                            )
                        )
                    ).all()
                assert sink.by_delivery[str(email.id)] == 1
                assert email.status == "delivered"
                assert email.attempts == 1
    finally:
        controller.stop()
