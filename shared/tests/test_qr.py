"""The QR codes printed on sealed documents read back, by an independent reader (zxing-cpp)."""

from __future__ import annotations

from urllib.parse import urlencode

import zxingcpp
from PIL import Image

from govshared.seal.pdf import qr_matrix


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
