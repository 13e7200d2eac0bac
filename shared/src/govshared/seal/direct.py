"""Sealed documents written straight to PDF: lines of Chinese text, the seal block, the seal data.

A notice or decision is a column of paragraphs and a closing seal block on A4. Laying it out with
reportlab's platypus and serialising its object tree was most of a sealed document's CPU
(profiled with cProfile on a loop sealing documents, in process): paragraph parsing, frames, text
objects, and the font's object tree formatted again for every file. Here the same page is
written directly: lines broken with the font's cached character widths, each line one text
operator, the red round seal and the QR code as the operators ``govshared.seal.pdf`` makes once,
and the objects that are the same in every file (the font, the page tree) as constant bytes.
The file is one revision: catalog with the embedded seal data, one page per column-full, the
document information, cross-reference table.

The geometry is platypus's (A4, margins 25/25/25/20 mm, a frame padding of 6 pt, the first
baseline a font size below the top, then one leading per line), so a document looks as it did.
Chinese text uses the CID font STSong-Light (Adobe-GB1, UniGB-UCS2-H), which every PDF reader
provides: no font file is embedded, as before.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics

from govshared.seal.pdf import _FONT_PLACEHOLDER, FONT, round_seal_operators
from govshared.seal.qr import qr_rows, rows_path

PAGE_WIDTH, PAGE_HEIGHT = A4
_PADDING = 6.0  # platypus Frame's default padding on each side
LEFT = 25 * mm + _PADDING
RIGHT = PAGE_WIDTH - 25 * mm - _PADDING
TOP = PAGE_HEIGHT - 25 * mm - _PADDING
BOTTOM = 20 * mm + _PADDING
_FONT_RESOURCE = "/F1"

# Characters a line may not start with (they hang on the line before) — GB/T 15834 punctuation.
_CANNOT_START = frozenset("，。、；：？！）》」』】〕〉”’…·%,.;:?!)]}")
_CANNOT_END = frozenset("（《「『【〔〈“‘([{")
_SPACES = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True, slots=True)
class Style:
    """A paragraph's font size, leading, alignment and first-line indent (points)."""

    size: float
    leading: float
    align: Literal["left", "center", "justify"] = "left"
    first_indent: float = 0.0


@dataclass(frozen=True, slots=True)
class Text:
    """A paragraph of text."""

    text: str
    style: Style


@dataclass(frozen=True, slots=True)
class Space:
    """Vertical space (points)."""

    height: float


@dataclass(frozen=True, slots=True)
class Seal:
    """The closing block: the QR code on the left, the authority, the date and the round seal on
    the right (``govshared.seal.pdf.SealBlock``'s drawing)."""

    authority: str
    seal_authority: str
    date_text: str
    qr: str

    width = 160 * mm
    height = 52 * mm


Block = Text | Space | Seal


class _Widths:
    """Character advance widths of STSong-Light at 1 pt, measured once per character."""

    def __init__(self) -> None:
        self._font = pdfmetrics.getFont(FONT)
        self._cache: dict[str, float] = {}

    def of(self, text: str) -> list[float]:
        """The width of each character of ``text``."""
        cache = self._cache
        try:
            return [cache[char] for char in text]
        except KeyError:
            for char in set(text) - cache.keys():
                cache[char] = self._font.stringWidth(char, 1.0)
            return [cache[char] for char in text]

    def line(self, text: str) -> float:
        """The width of ``text``."""
        return sum(self.of(text))


_WIDTHS = _Widths()


def _in_word(text: str, i: int) -> bool:
    """True when a break before ``text[i]`` would split a run of Latin letters, digits and
    ASCII punctuation (an item code, a credit code, a URL), which platypus keeps whole too."""
    return 0 < i < len(text) and _latin(text[i - 1]) and _latin(text[i])


def _latin(char: str) -> bool:
    return "!" <= char <= "~"


def break_lines(
    text: str, width: float, size: float, first_indent: float = 0.0
) -> list[tuple[str, float]]:
    """``text`` broken into lines no wider than ``width`` at ``size`` points, each with its width
    at 1 pt: CJK text may break between any two characters, closing punctuation hangs on the line
    before, opening punctuation goes to the next, a run of Latin characters moves whole."""
    text = _SPACES.sub(" ", text).strip()
    widths = _WIDTHS.of(text)
    lines: list[tuple[str, float]] = []
    start, used, limit = 0, 0.0, (width - first_indent) / size
    i, end = 0, len(text)
    while i < end:
        advance = widths[i]
        if used + advance <= limit or i == start:
            used += advance
            i += 1
            continue
        cut = i
        if _in_word(text, cut):
            word = cut
            while word > start and _in_word(text, word):
                word -= 1
            if word > start:
                cut = word
        while cut < end and text[cut] in _CANNOT_START and cut - start < 2 * (i - start):
            cut += 1
        if cut == i and cut - 1 > start and text[cut - 1] in _CANNOT_END:
            cut -= 1
        last = cut
        while last > start and text[last - 1] == " ":
            last -= 1
        lines.append((text[start:last], sum(widths[start:last])))
        while cut < end and text[cut] == " ":
            cut += 1
        start, i, used, limit = cut, cut, 0.0, width / size
    if start < end or not lines:
        lines.append((text[start:], sum(widths[start:])))
    return lines


def _num(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def _hex(text: str) -> str:
    return "<" + text.encode("utf-16-be").hex() + ">"


def _show(x: float, y: float, size: float, text: str, spacing: float = 0.0) -> str:
    tc = f"{_num(spacing)} Tc " if spacing else ""
    return f"BT /F1 {_num(size)} Tf {tc}1 0 0 1 {_num(x)} {_num(y)} Tm {_hex(text)} Tj ET"


class _Pages:
    """The page content streams, filled top to bottom."""

    def __init__(self) -> None:
        self.pages: list[list[str]] = [["0 g"]]
        self.y = TOP

    def new_page(self) -> None:
        self.pages.append(["0 g"])
        self.y = TOP

    def room(self, height: float) -> bool:
        return self.y - height >= BOTTOM - 1e-6

    def emit(self, operators: str) -> None:
        self.pages[-1].append(operators)

    def paragraph(self, block: Text) -> None:
        style = block.style
        width = RIGHT - LEFT
        lines = break_lines(block.text, width, style.size, style.first_indent)
        for n, (line, units) in enumerate(lines):
            if not self.room(style.leading):
                self.new_page()
            indent = style.first_indent if n == 0 else 0.0
            baseline = self.y - style.size
            line_width = units * style.size
            spacing = 0.0
            x = LEFT + indent
            if style.align == "center":
                x = LEFT + (width - line_width) / 2
            elif style.align == "justify" and n < len(lines) - 1 and len(line) > 1:
                spacing = max(0.0, (width - indent - line_width) / (len(line) - 1))
            self.emit(_show(x, baseline, style.size, line, spacing))
            self.y -= style.leading

    def seal(self, block: Seal) -> None:
        if not self.room(block.height):
            self.new_page()
        self.y -= block.height
        x0, y0 = LEFT, self.y
        rows = qr_rows(block.qr)
        module = 34 * mm / (len(rows) + 8)
        qx, qy = x0 + 4 * module, y0 + 12 * mm + 4 * module
        self.emit(
            f"q {_num(module)} 0 0 {_num(module)} {_num(qx)} {_num(qy)} cm\n{rows_path(rows)}\nQ"
        )
        self.emit(_show(x0 + 2 * mm, y0 + 8 * mm, 8, "扫码核验真伪"))
        right = x0 + block.width
        for text, dy in ((block.authority, 30 * mm), (block.date_text, 22 * mm)):
            self.emit(_show(right - _WIDTHS.line(text) * 13, y0 + dy, 13, text))
        operators = round_seal_operators(21 * mm, block.seal_authority).replace(
            _FONT_PLACEHOLDER + " ", _FONT_RESOURCE + " "
        )
        self.emit(f"q 1 0 0 1 {_num(right - 30 * mm)} {_num(y0 + 28 * mm)} cm\n{operators}\nQ")


def lay_out(blocks: Iterable[Block]) -> list[bytes]:
    """The content stream of each page."""
    pages = _Pages()
    for block in blocks:
        if isinstance(block, Text):
            pages.paragraph(block)
        elif isinstance(block, Space):
            pages.y -= block.height  # a space at the foot of a page is simply lost
        else:
            pages.seal(block)
    return ["\n".join(ops).encode("latin-1") for ops in pages.pages]


_FONT_OBJECT = (
    b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /Name /F1"
    b" /DescendantFonts [ << /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light"
    b" /CIDSystemInfo << /Ordering (GB1) /Registry (Adobe) /Supplement 0 >> /DW 1000"
    b" /FontDescriptor << /Type /FontDescriptor /FontName /STSongStd-Light /Ascent 752"
    b" /CapHeight 737 /Descent -271 /Flags 6 /FontBBox [ -25 -254 1000 880 ] /ItalicAngle 0"
    b" /Leading 148 /MaxWidth 1000 /MissingWidth 500 /StemH 91 /StemV 58 /XHeight 553 >>"
    b" /W [ 1 [ 207 270 342 467 462 797 710 239 374 ] 10 [ 374 423 605 238 375 238 334 462 ]"
    b" 18 26 462 27 28 238 29 31 605 32 [ 344 748 684 560 695 739 563 511 729 793 318 312 666"
    b" 526 896 758 772 544 772 628 465 607 753 711 972 647 620 607 374 333 374 606 500 239 417"
    b" 503 427 529 415 264 444 518 241 230 495 228 793 527 524 ] 81 [ 524 504 338 336 277 517"
    b" 450 652 466 452 407 370 258 370 605 ] ] >> ] >>"
)  # reportlab's STSong-Light (UnicodeCIDFont) object, the same in every file


def _pdf_text(value: str) -> bytes:
    return b"<FEFF" + value.encode("utf-16-be").hex().upper().encode() + b">"


def _pdf_name(key: str) -> bytes:
    return b"/" + re.sub(r"[^A-Za-z0-9_.\-]", lambda m: f"#{ord(m.group()):02X}", key).encode()


# Deflate's fastest level: a page is about 17 KB of operators, three quarters of them the QR
# code's; level 1 packs it in a quarter of level 6's time (0.06 against 0.24 ms) to about 4.1 KB
# against 3.2 KB.
_LEVEL = 1


def write_pdf(
    pages: Sequence[bytes],
    *,
    info: dict[str, str],
    attachment: str,
    data: bytes,
    created: datetime | None = None,
) -> bytes:
    """A PDF of the pages' content streams with the STSong-Light font, the document information
    ``info`` (keys without the slash) and ``data`` embedded, uncompressed, as ``attachment``."""
    stamp = (created or datetime.now(UTC)).astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")
    count = len(pages)
    # 1 catalog, 2 page tree, 3 font, 4 info, 5 embedded file, 6 file spec, then page and content.
    page_ids = [7 + 2 * n for n in range(count)]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R /PageMode /UseNone"
        b" /Names << /EmbeddedFiles << /Names [ %s 6 0 R ] >> >> >>" % _pdf_text(attachment),
        b"<< /Type /Pages /Count %d /Kids [ %s ] >>"
        % (count, b" ".join(b"%d 0 R" % p for p in page_ids)),
        _FONT_OBJECT,
        b"<< "
        + b" ".join(_pdf_name(k) + b" " + _pdf_text(v) for k, v in info.items())
        + b" /Producer (govshared.seal) /CreationDate (%s) /ModDate (%s) >>"
        % (stamp.encode(), stamp.encode()),
        b"<< /Type /EmbeddedFile /Subtype /application#2Fjson /Params << /Size %d >> "
        b"/Length %d >>\nstream\n" % (len(data), len(data)) + data + b"\nendstream",
        b"<< /Type /Filespec /F %s /UF %s /EF << /F 5 0 R >> >>"
        % (_pdf_text(attachment), _pdf_text(attachment)),
    ]
    for n, content in enumerate(pages):
        packed = zlib.compress(content, _LEVEL)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [ 0 0 %s %s ] /Contents %d 0 R"
            b" /Resources << /Font << /F1 3 0 R >> /ProcSet [ /PDF /Text ] >> >>"
            % (_num(PAGE_WIDTH).encode(), _num(PAGE_HEIGHT).encode(), page_ids[n] + 1)
        )
        objects.append(
            b"<< /Filter /FlateDecode /Length %d >>\nstream\n" % len(packed)
            + packed
            + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    ident = hashlib.md5(bytes(out), usedforsecurity=False).hexdigest().encode()
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R /ID [ <%s> <%s> ] >>\n" % (
        len(objects) + 1,
        ident,
        ident,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
