"""The QR codes printed on sealed documents read back, by an independent reader (zxing-cpp); the
seal drawn beside them names its font."""

from __future__ import annotations

import io
import re
from urllib.parse import urlencode

import zxingcpp
from PIL import Image
from pypdf import PdfReader
from reportlab.pdfgen.canvas import Canvas

from govshared.seal.pdf import FONT, draw_qr, draw_round_seal, qr_matrix


def image_of(
    matrix: tuple[tuple[bool, ...], ...], *, scale: int = 4, quiet: int = 4
) -> Image.Image:
    """The matrix as a black-on-white picture with its quiet zone, as the PDF draws it."""
    size = (len(matrix) + 2 * quiet) * scale
    image = Image.new("L", (size, size), 255)
    for row, modules in enumerate(matrix):
        for col, dark in enumerate(modules):
            if dark:
                x, y = (col + quiet) * scale, (row + quiet) * scale
                image.paste(0, (x, y, x + scale, y + scale))
    return image


def test_a_verification_url_reads_back_exactly() -> None:
    number = "310000〔2026〕准许字第3A9F01C2号"
    url = "https://onestop.gov.example.cn/verify?" + urlencode(
        {"number": number, "digest": "ab" * 32}
    )
    [found] = zxingcpp.read_barcodes(image_of(qr_matrix(url)))
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    assert found.text == url


def test_short_and_long_payloads() -> None:
    for text in ("x", "https://onestop.gov.example.cn/licences/verify?licence_no=A1&version=2" * 3):
        [found] = zxingcpp.read_barcodes(image_of(qr_matrix(text)))
        assert found.text == text


def test_the_code_drawn_on_a_sealed_page_reads_back() -> None:
    """The QR path in a sealed PDF's content stream (module units), read by zxing-cpp."""
    url = "https://onestop.gov.example.cn/verify?" + urlencode(
        {"number": "310000〔2026〕准许字第3A9F01C2号", "digest": "cd" * 32}
    )
    canvas = Canvas(io.BytesIO())
    draw_qr(canvas, text=url, x=20, y=20, size=100)
    canvas.showPage()
    page = PdfReader(io.BytesIO(canvas.getpdfdata())).pages[0]
    runs = [
        tuple(int(v) for v in found)
        for found in re.findall(rb"(\d+) (\d+) (\d+) 1 re", page.get_contents().get_data())
    ]
    count = max(y for _x, y, _w in runs) + 1
    grid = [[False] * count for _ in range(count)]
    for x, y, width in runs:
        for col in range(x, x + width):
            grid[count - 1 - y][col] = True
    [found] = zxingcpp.read_barcodes(image_of(tuple(tuple(row) for row in grid)))
    assert found.text == url


def test_the_seal_drawn_from_its_cached_operators_names_the_pages_own_font() -> None:
    """The seal's operators are made once; each document's font resource name is put in."""
    canvas = Canvas(io.BytesIO())
    canvas.setFont("Courier", 10)  # another font first: STSong-Light gets a later name
    canvas.drawString(10, 10, "x")
    draw_round_seal(canvas, x=100, y=100, radius=50, name="上海市市场监督管理局")
    canvas.showPage()
    page = PdfReader(io.BytesIO(canvas.getpdfdata())).pages[0]
    fonts = {
        str(k): str(v.get_object()["/BaseFont"]) for k, v in page["/Resources"]["/Font"].items()
    }
    used = set(re.findall(rb"(/F\d+) [\d.]+ Tf", page.get_contents().get_data()))
    # Every font the page's text selects is among its resources, the seal's one among them.
    assert {"/Courier", f"/{FONT}"} <= {fonts[name.decode()] for name in used}
    assert "市场监督管理局" in page.extract_text().replace(" ", "").replace("\n", "")
