"""Sealed documents across the real services: approval seals the 受理通知书, notify fetches the PDF
from approval with its service token and emails it, and the proof of service returns to approval."""

from __future__ import annotations

import asyncio
import hashlib
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from govshared.auth import Role
from govshared.signing.devca import DevCA
from govshared.testing import random_uscc
from tests.e2e.conftest import Suite
from tests.e2e.test_slice import ACCEPT, submit, wait_for
from tools.phone import main as phone_main

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


async def test_signed_on_the_phone_command_the_receipt_stands_beside_notify_s_proof(
    suite: Suite,
) -> None:
    """The enterprise signs its 告知承诺书 with ``tools/phone.py`` (run twice: the second run, a
    phone that lost the first answer, gets the same answer), is decided at once; its 签收人 signs
    the 送达回证 with a personal key; the trail has it beside notify's delivery record, and the
    signed receipt verifies publicly."""
    uscc, name = random_uscc(), "上海临港示范有限公司"
    enterprise = suite.tokens.enterprise(uscc)
    token = enterprise["Authorization"].removeprefix("Bearer ")
    approval = suite.url("approval")
    ca = DevCA(Path(suite.processes["approval"].env["APPROVAL_DATA_DIR"]) / "keys" / "signing-ca")
    seal = ca.issue_seal(uscc=uscc, name=name, save=True)
    person = ca.issue_person(name="张小三", id_number="110101199003070011", save=True)

    async def phone(session_id: str, key: Path | None, cert: Path | None) -> int:
        argv = ["sign", "--session", f"{approval}/api/v1/signing-sessions/{session_id}"]
        argv += ["--token", token, "--key", str(key), "--cert", str(cert)]
        return await asyncio.to_thread(phone_main, argv)

    async with httpx.AsyncClient(timeout=10) as client:
        opened = await client.post(
            f"{approval}/api/v1/signing-sessions",
            json={"item_code": "JXW-CN-011", "applicant_name": name},
            headers=enterprise,
        )
        assert opened.status_code == 201, opened.text
        commitment = opened.json()["id"]
        assert await phone(commitment, seal.key_path, seal.cert_path) == 0
        assert await phone(commitment, seal.key_path, seal.cert_path) == 0
        decided = await client.post(
            f"{approval}/api/v1/applications",
            json={
                "item_code": "JXW-CN-011",
                "applicant_name": name,
                "form": {"project_name": "临港数据中心项目", "annual_energy_tce": 8000},
                "commitment_signing_session": commitment,
            },
            headers=enterprise,
        )
        assert decided.status_code == 201 and decided.json()["state"] == "approved", decided.text
        application = f"{approval}/api/v1/applications/{decided.json()['id']}"

        async def trail() -> list[dict[str, Any]]:
            return list((await client.get(f"{application}/events", headers=enterprise)).json())

        async def decision_served() -> bool:
            return any(e["action"] == "notice_served" for e in await trail())

        await wait_for(decision_served, within=30)
        receipt = await client.post(
            f"{application}/signing-sessions", json={"purpose": "receipt"}, headers=enterprise
        )
        assert receipt.status_code == 201, receipt.text
        assert await phone(receipt.json()["id"], person.key_path, person.cert_path) == 0
        posted = await client.post(
            f"{application}/receipt",
            json={"signing_session": receipt.json()["id"]},
            headers=enterprise,
        )
        assert posted.status_code == 200, posted.text
        entries = await trail()
        actions = [e["action"] for e in entries]
        assert "notice_served" in actions and "receipt_signed" in actions
        [signed] = [e for e in entries if e["action"] == "receipt_signed"]
        assert signed["details"]["signer"] == "张*三"

        async def receipt_sealed() -> bool:
            listing = await client.get(f"{application}/documents", headers=enterprise)
            return any(
                d["kind"] == "receipt" and d["status"] == "valid" for d in listing.json()["items"]
            )

        await wait_for(receipt_sealed, within=30)
        listing = await client.get(f"{application}/documents", headers=enterprise)
        (document,) = [d for d in listing.json()["items"] if d["kind"] == "receipt"]
        pdf = await client.get(f"{application}/documents/{document['id']}/pdf", headers=enterprise)
        verified = await client.post(
            f"{approval}/api/v1/documents/verify",
            files={"file": ("receipt.pdf", pdf.content, "application/pdf")},
        )
    result = verified.json()
    assert result["genuine"] is True, result
    assert result["signer"] == "张*三" and result["signer_kind"] == "person"
    assert result["certificate_valid_at_signing"] is True
