"""The QR codes printed on sealed documents read back, by an independent reader (zxing-cpp); the
seal drawn beside them names its font; a page written directly (``govshared.seal.direct``) has
its text, its Chinese font, its seal data and a QR code that reads back."""

from __future__ import annotations

import io
import random
import re
import string
from urllib.parse import urlencode

import segno
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from reportlab.pdfgen.canvas import Canvas

from govshared.seal import direct
from govshared.seal.pdf import FONT, draw_qr, draw_round_seal, embedded, qr_matrix


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


def modules_drawn(content: bytes) -> tuple[tuple[bool, ...], ...]:
    """The dark modules a QR path draws: runs ``x y w 1 re`` in module units, rows moved by
    ``1 0 0 1 0 dy cm``."""
    shift, runs = 0, []
    for found in re.finditer(rb"1 0 0 1 0 (-?\d+) cm|(\d+) (\d+) (\d+) 1 re", content):
        if found.group(1) is not None:
            shift += int(found.group(1))
        else:
            x, y, width = (int(v) for v in found.group(2, 3, 4))
            runs.append((x, y + shift, width))
    count = max(y for _x, y, _w in runs) + 1
    grid = [[False] * count for _ in range(count)]
    for x, y, width in runs:
        for col in range(x, x + width):
            grid[count - 1 - y][col] = True
    return tuple(tuple(row) for row in grid)


def test_a_verification_url_reads_back_exactly() -> None:
    number = "310000〔2026〕准许字第3A9F01C2号"
    url = "https://onestop.gov.example.cn/verify?" + urlencode(
        {"number": number, "digest": "ab" * 32}
    )
    [found] = zxingcpp.read_barcodes(
        image_of(qr_matrix(url)), formats=zxingcpp.BarcodeFormat.QRCode
    )
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    assert found.text == url


def test_short_and_long_payloads() -> None:
    for text in ("x", "https://onestop.gov.example.cn/licences/verify?licence_no=A1&version=2" * 3):
        [found] = zxingcpp.read_barcodes(
            image_of(qr_matrix(text)), formats=zxingcpp.BarcodeFormat.QRCode
        )
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
    grid = modules_drawn(page.get_contents().get_data())
    [found] = zxingcpp.read_barcodes(image_of(grid), formats=zxingcpp.BarcodeFormat.QRCode)
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


def test_the_codes_are_segnos_module_for_module() -> None:
    """The tables' codes are the symbols segno makes (level M, mask 0) across versions and
    modes: byte-mode URLs from the tables, digits, the alphanumeric set and Chinese by segno."""
    rnd = random.Random(18)
    printable = string.ascii_letters + string.digits + string.punctuation + " "
    texts = ["x", "12345", "HELLO WORLD", "证照编号", "https://onestop.gov.example.cn/verify"]
    texts += ["".join(rnd.choice(printable) for _ in range(n)) for n in range(1, 320, 9)]
    for text in texts:
        expected = segno.make_qr(text, error="m", boost_error=False, mask=0).matrix
        assert qr_matrix(text) == tuple(tuple(bool(m) for m in row) for row in expected), text


BODY = direct.Style(size=13, leading=22, align="justify", first_indent=26)
URL = "https://onestop.gov.example.cn/verify?number=X&digest=" + "ab" * 32


def flat(text: str) -> str:
    return "".join(text.split())


def document(paragraphs: list[str]) -> bytes:
    blocks: list[direct.Block] = [
        direct.Text("准予行政许可决定书", direct.Style(size=22, leading=30, align="center")),
        *(direct.Text(p, BODY) for p in paragraphs),
        direct.Seal(
            authority="上海市市场监督管理局",
            seal_authority="上海市市场监督管理局",
            date_text="2026年12月7日",
            qr=URL,
        ),
    ]
    return direct.write_pdf(
        direct.lay_out(blocks),
        info={"Title": "准予行政许可决定书", "OnestopDocumentNumber": "沪〔2026〕准许字第1号"},
        attachment="onestop-seal.json",
        data=b'{"content":{}}',
    )


def test_a_reader_finds_the_text_font_data_and_qr_code() -> None:
    body = "申请人上海示范有限公司（统一社会信用代码：91310000MA1K00000X）提出的申请，经审查，符合法定条件。"
    pdf = document([body])
    reader = PdfReader(io.BytesIO(pdf))
    [page] = reader.pages
    text = flat(page.extract_text())
    assert flat(body) in text and "准予行政许可决定书" in text and "扫码核验真伪" in text
    assert "2026年12月7日" in text and "上海市市场监督管理局" in text
    font = page["/Resources"]["/Font"]["/F1"].get_object()
    assert font["/BaseFont"] == f"/{FONT}" and font["/Encoding"] == "/UniGB-UCS2-H"
    assert reader.metadata is not None and reader.metadata["/Title"] == "准予行政许可决定书"
    assert reader.metadata["/OnestopDocumentNumber"] == "沪〔2026〕准许字第1号"
    assert embedded(pdf, "onestop-seal.json") == b'{"content":{}}'
    content = page.get_contents().get_data()
    [qr] = re.findall(rb"cm\n(1 0 0 1 0 \d+ cm\n.*?)\nQ", content, re.S)
    [found] = zxingcpp.read_barcodes(
        image_of(modules_drawn(qr)), formats=zxingcpp.BarcodeFormat.QRCode
    )
    assert found.text == URL


def test_long_text_flows_onto_a_second_page_and_the_seal_block_stays_whole() -> None:
    paragraphs = [
        f"第{i}条：" + "申请材料齐全、符合法定形式，本机关予以受理。" * 6 for i in range(12)
    ]
    reader = PdfReader(io.BytesIO(document(paragraphs)))
    assert len(reader.pages) >= 2
    text = flat("".join(page.extract_text() for page in reader.pages))
    for paragraph in paragraphs:
        assert flat(paragraph) in text
    last = reader.pages[-1].get_contents().get_data()
    assert b" re " in last and "扫码核验真伪" in reader.pages[-1].extract_text()


def test_lines_keep_codes_whole_and_punctuation_off_the_start() -> None:
    text = "统一社会信用代码：" * 5 + "91310000MA1K00000X，申请编号：A202612070001。" * 4
    lines = [line for line, _ in direct.break_lines(text, 300, 13)]
    assert "".join(lines) == text
    assert all(line[0] not in "，。：）" for line in lines[1:])
    for code in ("91310000MA1K00000X", "A202612070001"):
        assert all(code in line for line in lines if code[:4] in line)
    widths = [units * 13 for _, units in direct.break_lines(text, 300, 13)]
    assert max(widths[:-1]) <= 300 + 13  # only hanging punctuation passes the measure
