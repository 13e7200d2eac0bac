"""The public verification page in a real headless Chromium (Debian's package), served over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from govshared.testing import CHROMIUM_FLAGS, chromium_binary, dump_dom, serve_on_loopback


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The session's app on a loopback port (its lifespan already runs)."""
    async with serve_on_loopback(app) as url:
        yield url


async def test_page_shows_genuine_and_forged_in_chromium(approved: Any, served: str) -> None:
    approval = (await approved.documents())[1]
    genuine = await dump_dom(
        f"{served}/verify?{urlencode({'number': approval['number'], 'sha256': approval['pdf_sha256']})}"
    )
    assert 'data-genuine="true"' in genuine and "真实有效" in genuine
    assert approval["number"] in genuine and "上海无线示范有限公司" in genuine
    assert "开发用章" in genuine  # the seal's authority

    forged = await dump_dom(
        f"{served}/verify?{urlencode({'number': approval['number'], 'sha256': '0' * 64})}"
    )
    assert 'data-genuine="false"' in forged and "核验未通过" in forged and "篡改" in forged

    unknown = await dump_dom(f"{served}/verify?{urlencode({'number': 'NO-SUCH-DOCUMENT'})}")
    assert 'data-genuine="false"' in unknown and "查无此文书" in unknown

    empty = await dump_dom(f"{served}/verify")
    assert 'type="file"' in empty and 'id="result"' not in empty


class DevTools:
    """A minimal Chrome DevTools Protocol session on one page (no browser download, no driver)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.last_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        await self.ws.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("id") == self.last_id:
                assert "error" not in message, message["error"]
                return dict(message["result"])

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str) -> Any:
        """The expression's value once truthy (up to 30 s)."""
        for _ in range(300):
            with contextlib.suppress(AssertionError):
                value = await self.evaluate(expression)
                if value:
                    return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")


@contextlib.asynccontextmanager
async def browser_page(url: str) -> AsyncIterator[DevTools]:
    """Headless Chromium on ``url``, driven over its DevTools websocket."""
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            chromium_binary(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            url,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        drain: asyncio.Task[None] | None = None
        try:
            port = None
            async with asyncio.timeout(30):
                while port is None:
                    line = (await process.stderr.readline()).decode(errors="replace")
                    assert line, "Chromium exited before DevTools started"
                    if found := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line):
                        port = int(found.group(1))

            async def discard(stream: asyncio.StreamReader) -> None:
                while await stream.read(65536):
                    pass

            drain = asyncio.create_task(discard(process.stderr))
            async with httpx.AsyncClient() as http:
                targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
            page = next(t for t in targets if t["type"] == "page")
            async with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
                yield DevTools(ws)
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()
            if drain is not None:
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain


async def upload_in_page(page: DevTools, pdf_path: Path) -> str:
    """Choose the file in the page's upload form, submit it, and return the result section."""
    await page.wait_for("document.querySelector('input[type=file]') !== null")
    root = (await page.call("DOM.getDocument"))["root"]["nodeId"]
    node = (await page.call("DOM.querySelector", nodeId=root, selector="input[type=file]"))[
        "nodeId"
    ]
    await page.call("DOM.setFileInputFiles", nodeId=node, files=[str(pdf_path)])
    await page.evaluate("document.querySelector('form[enctype]').submit()")
    # The section appears before its text is filled in: wait for both.
    return str(
        await page.wait_for(
            "(r => r && r.textContent.trim() ? r.outerHTML : null)"
            "(document.querySelector('#result'))"
        )
    )


async def test_person_uploads_genuine_and_tampered_pdfs_in_chromium(
    approved: Any, served: str, tmp_path: Path
) -> None:
    approval = (await approved.documents())[1]
    pdf = await approved.pdf(approval)
    genuine_file = tmp_path / "genuine.pdf"
    genuine_file.write_bytes(pdf)
    needle = f'"applicant_uscc":"{approved.uscc}"'.encode()
    at = pdf.index(needle) + len(needle) - 2
    tampered_file = tmp_path / "tampered.pdf"
    tampered_file.write_bytes(
        pdf[:at] + (b"0" if pdf[at : at + 1] != b"0" else b"1") + pdf[at + 1 :]
    )
    async with browser_page(f"{served}/verify") as page:
        genuine = await upload_in_page(page, genuine_file)
        assert 'data-genuine="true"' in genuine and "真实有效" in genuine
        assert approval["number"] in genuine
        await page.call("Page.navigate", url=f"{served}/verify")
        await page.wait_for("document.querySelector('#result') === null")
        tampered = await upload_in_page(page, tampered_file)
        assert 'data-genuine="false"' in tampered and "digest_mismatch" in tampered
        assert "篡改" in tampered


async def test_page_upload_form_answers_in_html(approved: Any, client: httpx.AsyncClient) -> None:
    approval = (await approved.documents())[1]
    pdf = await approved.pdf(approval)
    page = await client.post("/verify", files={"file": ("d.pdf", pdf, "application/pdf")})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-genuine="true"' in page.text and approval["number"] in page.text
    wrong = await client.post("/verify", files={"file": ("d.txt", b"hello", "text/plain")})
    assert wrong.status_code == 415 and "PDF" in wrong.text
