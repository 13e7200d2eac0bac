"""/docs works offline: Swagger UI's script and style come from the service itself, not a CDN."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from govshared.testing import dump_dom, serve_on_loopback


async def test_docs_page_loads_its_assets_from_the_service(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets, page.text
    # Every script, style and icon is a path on this service: nothing from another host.
    assert all(a.startswith("/docs/assets/") for a in assets), assets
    assert "//" not in "".join(assets)
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset
    script = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"]
    assert "SwaggerUIBundle" in script.text
    assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text


async def test_docs_render_the_api_in_chromium_without_a_network(app: FastAPI) -> None:
    # Chromium on loopback only (no route to a CDN here): the operations render from the service.
    async with serve_on_loopback(app) as url:
        dom = await dump_dom(f"{url}/docs", settle_ms=15000)
    assert 'class="swagger-ui"' in dom or "swagger-ui" in dom
    assert "opblock" in dom, dom[-2000:]  # the rendered operations
    assert "/api/v1/applications" in dom
