"""Every link a user receives points at the ports the suite runs on (here random ones, not
8001/8002): verification links and QR codes in sealed PDFs, licences' ``qr_url``, download links."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from govshared.seal.pdf import extract_text
from govshared.testing import random_uscc
from tests.e2e.conftest import Suite, free_port
from tests.e2e.test_slice import decide, submit, wait_for
from tools.suite import SERVICES, suite_env

pytestmark = pytest.mark.e2e

PUBLIC_URL = re.compile(r"^[A-Z]+_(?:[A-Z]+_)?PUBLIC(?:_BASE)?_URL$")


def test_the_launcher_fills_every_public_url_setting_from_the_ports(tmp_path: Path) -> None:
    from approval.config import Settings as ApprovalSettings
    from licensing.config import Settings as LicenseSettings
    from notify.config import Settings as NotifySettings

    ports = {name: free_port() for name in SERVICES}
    envs = suite_env(data_dir=tmp_path, ports=ports)
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    for name, settings in (
        ("approval", ApprovalSettings),
        ("license", LicenseSettings),
        ("notify", NotifySettings),
    ):
        prefix = SERVICES[name][1]
        public = [f"{prefix}{f.upper()}" for f in settings.model_fields]
        public = [p for p in public if PUBLIC_URL.match(p)]
        assert public, name
        for setting in public:
            # NOTIFY_APPROVAL_PUBLIC_URL is approval's address, APPROVAL_PUBLIC_BASE_URL its own.
            target = setting.removeprefix(prefix).split("_")[0].lower()
            expected = url[target] if target in url else url[name]
            assert envs[name][setting] == expected, setting


async def test_links_follow_the_ports_and_work(suite: Suite) -> None:
    approval, license_ = suite.url("approval"), suite.url("license")
    assert not approval.endswith(":8001") and not license_.endswith(":8002")
    uscc = random_uscc()
    enterprise = suite.tokens.enterprise(uscc)
    async with httpx.AsyncClient(timeout=10) as client:
        created = await submit(client, suite, uscc)
        await decide(client, suite, created["id"])

        inbox: list[dict[str, Any]] = []

        async def decision_and_certificate_served() -> bool:
            # Two independent paths (approval's sealer and relay; license's): either may be first.
            page = await client.get(f"{suite.url('notify')}/api/v1/inbox", headers=enterprise)
            inbox[:] = page.json()["items"]
            kinds = {(m["document"] or {}).get("kind") for m in inbox}
            return {"approval", "licence"} <= kinds

        await wait_for(decision_and_certificate_served, within=60)
        served = [m for m in inbox if m["document"] is not None]
        assert {m["document"]["kind"] for m in served} >= {"approval", "licence"}
        for message in served:
            document = message["document"]
            issuer = license_ if document["kind"] == "licence" else approval
            # The links in the text and in the reference, on the issuer's own port.
            assert document["download_url"] == issuer + document["download_path"]
            assert f"下载：{document['download_url']}" in message["body"]
            verify = urlsplit(document["verify_url"])
            assert f"{verify.scheme}://{verify.netloc}" == issuer
            pdf = await client.get(document["download_url"], headers=enterprise)
            assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
            assert document["verify_url"] in extract_text(pdf.content).replace("\n", "")
            page = await client.get(document["verify_url"])
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        # The licence's QR code opens the verification on license's port, and says genuine.
        licences = await client.get(
            f"{license_}/api/v1/enterprises/{uscc}/licences", headers=enterprise
        )
        [summary] = licences.json()["items"]
        licence = await client.get(
            f"{license_}/api/v1/licences/{summary['licence_no']}", headers=enterprise
        )
        qr_url = licence.json()["qr_url"]
        assert qr_url.startswith(f"{license_}/licences/verify?")
        opened = await client.get(qr_url)
        assert opened.status_code == 200 and 'data-genuine="true"' in opened.text
