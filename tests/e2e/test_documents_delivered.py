"""Sealed documents across the real services: approval seals the 受理通知书, notify fetches the PDF
from approval with its service token and emails it, and the proof of service returns to approval."""

from __future__ import annotations

import hashlib
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from govshared.auth import Role
from govshared.testing import random_uscc
from tests.e2e.conftest import Suite
from tests.e2e.test_slice import ACCEPT, submit, wait_for

pytestmark = pytest.mark.e2e


def emails_to(mail_dir: Path, address: str) -> list[EmailMessage]:
    """The .eml files notify wrote for an address (embedded mode: no SMTP host)."""
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if address in str(message["To"]):
            found.append(message)
    return found


async def test_the_sealed_acceptance_notice_is_emailed_as_approval_issued_it(suite: Suite) -> None:
    uscc = random_uscc()
    address = f"e2e-{uscc.lower()}@example.com"
    mail_dir = Path(suite.processes["notify"].env["NOTIFY_DATA_DIR"]) / "mail"
    enterprise = suite.tokens.enterprise(uscc)
    async with httpx.AsyncClient(timeout=10) as client:
        saved = await client.put(
            f"{suite.url('notify')}/api/v1/preferences", json={"email": address}, headers=enterprise
        )
        assert saved.status_code == 200, saved.text
        created = await submit(client, suite, uscc)
        application = f"{suite.url('approval')}/api/v1/applications/{created['id']}"
        accepted = await client.post(
            f"{application}/accept",
            json=ACCEPT,
            headers=suite.tokens.staff(Role.ACCEPTOR, "310000"),
        )
        assert accepted.status_code == 200, accepted.text

        async def served_by_email() -> bool:
            trail = await client.get(f"{application}/events", headers=enterprise)
            return any(
                e["action"] == "notice_served"
                and e["details"]["cause_event_type"] == "cn.gov.approval.document.issued.v1"
                and e["details"]["channel"] == "email"
                for e in trail.json()
            )

        await wait_for(served_by_email, within=30)
        listing = await client.get(f"{application}/documents", headers=enterprise)
        documents: list[dict[str, Any]] = listing.json()["items"]
        (notice,) = [d for d in documents if d["kind"] == "acceptance"]
        assert notice["status"] == "valid"
        issued = await client.get(f"{application}/documents/{notice['id']}/pdf", headers=enterprise)
        assert issued.status_code == 200
        inbox = await client.get(f"{suite.url('notify')}/api/v1/inbox", headers=enterprise)
        served = [m for m in inbox.json()["items"] if m["document"] is not None]

    (message,) = served
    assert message["document"]["number"] == notice["number"]
    assert message["document"]["pdf_sha256"] == notice["pdf_sha256"]
    (mail,) = [m for m in emails_to(mail_dir, address) if "文书送达" in str(m["Subject"])]
    (attachment,) = mail.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"{notice['number']}.pdf"
    content = attachment.get_content()
    assert content == issued.content
    assert hashlib.sha256(content).hexdigest() == notice["pdf_sha256"]
