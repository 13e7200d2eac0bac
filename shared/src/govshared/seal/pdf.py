"""Sealed PDFs: Chinese text without a font file, the red round seal, a QR code, embedded seal data.

Service-agnostic drawing and packaging shared by approval's notices and decisions and license's
certificates. Chinese text uses reportlab's built-in CID font STSong-Light (Adobe-GB1), which every
PDF reader shows without an embedded font. What was signed travels inside the PDF as an uncompressed
embedded file, so that the file alone is enough to verify it.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
from typing import Any

import segno
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, SimpleDocTemplate

from govshared.seal import SealSignature, canonical_json

FONT = "STSong-Light"
SEAL_RED = Color(0.86, 0.08, 0.12)

pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def china_date_text(iso_date: str) -> str:
    """2026-11-29 → 2026年11月29日."""
    year, month, day = (int(part) for part in iso_date.split("-"))
    return f"{year}年{month}月{day}日"


@functools.lru_cache(maxsize=256)
def qr_matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """The modules of a QR code of ``text`` (error correction level M), row by row from the top.

    segno encodes it with one fixed mask instead of scoring all eight: any mask is a valid code
    (ISO/IEC 18004 lets the encoder choose). A verification URL takes about 5 ms; reportlab's
    encoder took 20 ms and more, most of a sealed document's layout.
    """
    code = segno.make_qr(text, error="m", boost_error=False, mask=0)
    return tuple(tuple(bool(module) for module in row) for row in code.matrix)


def draw_qr(canvas: Any, *, text: str, x: float, y: float, size: float) -> None:
    """A QR code of ``text`` with its lower-left corner at (x, y), with its 4-module quiet zone.

    Each run of dark modules in a row is one rectangle: reportlab's QR widget builds a shape object
    per module, which made the code the slowest part of a sealed document.
    """
    matrix = qr_matrix(text)
    count = len(matrix)
    module = size / (count + 8)
    canvas.saveState()
    canvas.setFillColorRGB(0, 0, 0)
    for row, modules in enumerate(matrix):
        top = y + size - (row + 4 + 1) * module
        col = 0
        while col < count:
            if not modules[col]:
                col += 1
                continue
            start = col
            while col < count and modules[col]:
                col += 1
            canvas.rect(
                x + (start + 4) * module, top, (col - start) * module, module, stroke=0, fill=1
            )
    canvas.restoreState()


def draw_round_seal(canvas: Any, *, x: float, y: float, radius: float, name: str) -> None:
    """A red round official seal: the authority's name along the upper arc, a star in the centre."""
    canvas.saveState()
    canvas.setStrokeColor(SEAL_RED)
    canvas.setFillColor(SEAL_RED)
    canvas.setLineWidth(2.2)
    canvas.circle(x, y, radius, stroke=1, fill=0)
    star = canvas.beginPath()
    outer, inner = radius * 0.3, radius * 0.12
    for i in range(10):
        r = outer if i % 2 == 0 else inner
        angle = math.pi / 2 + i * math.pi / 5
        px, py = x + r * math.cos(angle), y + r * math.sin(angle)
        if i == 0:
            star.moveTo(px, py)
        else:
            star.lineTo(px, py)
    star.close()
    canvas.drawPath(star, stroke=0, fill=1)
    chars = list(name)[:20] or ["章"]
    font_size = min(radius * 0.28, 2 * math.pi * radius * 0.62 / len(chars))
    canvas.setFont(FONT, font_size)
    span = min(250.0, 16.0 * len(chars))  # degrees of arc the name takes
    for i, char in enumerate(chars):
        angle = 90 + span / 2 - (span * (i + 0.5) / len(chars))
        canvas.saveState()
        canvas.translate(x, y)
        canvas.rotate(angle - 90)
        canvas.drawCentredString(0, radius - font_size - 3, char)
        canvas.restoreState()
    canvas.restoreState()


class SealBlock(Flowable):
    """The closing block: QR code on the left; authority, date and the red round seal on the right."""

    def __init__(self, *, authority: str, seal_authority: str, date_text: str, qr: str) -> None:
        super().__init__()
        self.authority = authority
        self.seal_authority = seal_authority
        self.date_text = date_text
        self.qr = qr
        self.width, self.height = 160 * mm, 52 * mm

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        """A fixed block."""
        return self.width, self.height

    def draw(self) -> None:
        """Draw the QR code, the signature lines and the seal over them."""
        canvas = self.canv
        draw_qr(canvas, text=self.qr, x=0, y=12 * mm, size=34 * mm)
        canvas.setFont(FONT, 8)
        canvas.setFillColor(black)
        canvas.drawString(2 * mm, 8 * mm, "扫码核验真伪")
        right = self.width
        canvas.setFont(FONT, 13)
        canvas.drawRightString(right, 30 * mm, self.authority)
        canvas.drawRightString(right, 22 * mm, self.date_text)
        draw_round_seal(
            canvas, x=right - 30 * mm, y=28 * mm, radius=21 * mm, name=self.seal_authority
        )


_TRAILER = re.compile(rb"trailer\s*<<(?P<body>.*?)>>\s*startxref\s*(?P<xref>\d+)\s*%%EOF\s*$", re.S)


def _ref(body: bytes, key: bytes) -> int | None:
    found = re.search(rb"/" + key + rb"\s+(\d+)\s+0\s+R", body)
    return int(found.group(1)) if found else None


def _pdf_string(value: str) -> bytes:
    return b"<FEFF" + value.encode("utf-16-be").hex().upper().encode() + b">"


def embed(pdf: bytes, *, name: str, data: bytes, metadata: dict[str, str]) -> bytes:
    """The PDF with ``data`` as an uncompressed embedded file and extra document metadata.

    Written as an incremental update (ISO 32000-1 §7.5.6) appended to reportlab's output: a new
    catalog naming the embedded file, a new information dictionary, and their cross-reference
    section. Re-parsing and re-writing the whole file with pypdf cost 16 ms a document, more than
    laying it out; appending costs microseconds. A PDF that is not a plain single-revision file
    (not reportlab's) goes the slow way.
    """
    trailer = _TRAILER.search(pdf)
    root = _ref(trailer.group("body"), b"Root") if trailer else None
    size = re.search(rb"/Size\s+(\d+)", trailer.group("body")) if trailer else None
    catalog = (
        re.search(rb"\n%d 0 obj\s*<<(?P<body>[^<>]*)>>\s*endobj" % root, pdf) if root else None
    )
    if trailer is None or root is None or size is None or catalog is None:
        return _embed_by_rewriting(pdf, name=name, data=data, metadata=metadata)
    info = _ref(trailer.group("body"), b"Info")
    info_body = b""
    if info is not None:
        found = re.search(rb"\n%d 0 obj\s*<<(?P<body>.*?)>>\s*endobj" % info, pdf, re.S)
        info_body = found.group("body") if found else b""
    first = int(size.group(1))
    file_obj, spec_obj, names_obj, new_info = first, first + 1, first + 2, first + 3
    extra = b"".join(
        b" /" + k.lstrip("/").encode() + b" " + _pdf_string(v) for k, v in metadata.items()
    )
    objects = {
        file_obj: b"<< /Type /EmbeddedFile /Subtype /application#2Fjson /Params << /Size %d >> "
        b"/Length %d >>\nstream\n" % (len(data), len(data)) + data + b"\nendstream",
        spec_obj: b"<< /Type /Filespec /F %s /UF %s /EF << /F %d 0 R >> >>"
        % (_pdf_string(name), _pdf_string(name), file_obj),
        names_obj: b"<< /Names [%s %d 0 R] >>" % (_pdf_string(name), spec_obj),
        new_info: b"<<" + info_body + extra + b" >>",
        root: b"<<" + catalog.group("body") + b" /Names << /EmbeddedFiles %d 0 R >> >>" % names_obj,
    }
    out = bytearray(pdf if pdf.endswith(b"\n") else pdf + b"\n")
    offsets: dict[int, int] = {}
    for number, body in objects.items():
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n"
    for number in sorted(offsets):
        out += b"%d 1\n%010d 00000 n \n" % (number, offsets[number])
    ident = re.search(rb"/ID\s*(\[[^\]]*\])", trailer.group("body"))
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R /Prev %d%s >>\n" % (
        new_info + 1,
        root,
        new_info,
        int(trailer.group("xref")),
        b" /ID " + ident.group(1) if ident else b"",
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _embed_by_rewriting(pdf: bytes, *, name: str, data: bytes, metadata: dict[str, str]) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_attachment(name, data)
    writer.add_metadata(metadata)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def layout_pdf(
    story: list[Flowable], *, title: str, subject: str, author: str, creator: str
) -> bytes:
    """Lay out ``story`` on A4 with the suite's margins and the document's metadata."""
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=25 * mm,
        bottomMargin=20 * mm,
        title=title,
        subject=subject,
        author=author,
        creator=creator,
    ).build(story)
    return buffer.getvalue()


def sealed_pdf(
    story: list[Flowable],
    *,
    title: str,
    subject: str,
    author: str,
    creator: str,
    attachment: str,
    content: dict[str, Any],
    signature: SealSignature,
    metadata: dict[str, str],
) -> bytes:
    """Lay out ``story`` on A4 and embed the signed content and its signature as ``attachment``."""
    return embed(
        layout_pdf(story, title=title, subject=subject, author=author, creator=creator),
        name=attachment,
        data=canonical_json({"content": content, "signature": signature.model_dump(mode="json")}),
        metadata=metadata,
    )


def read_sealed(pdf: bytes, attachment: str) -> tuple[dict[str, Any], SealSignature] | None:
    """The signed content and signature embedded as ``attachment``; None when there are none."""
    data = embedded(pdf, attachment)
    if data is None:
        return None
    try:
        sealed = json.loads(data)
        return dict(sealed["content"]), SealSignature.model_validate(sealed["signature"])
    except (ValueError, KeyError, TypeError):
        return None


def embedded(pdf: bytes, name: str) -> bytes | None:
    """The embedded file ``name`` of a PDF; None when absent or the file is not a readable PDF."""
    try:
        attachments = PdfReader(io.BytesIO(pdf)).attachments.get(name) or []
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return bytes(attachments[0]) if attachments else None


def extract_text(pdf: bytes) -> str:
    """The text of every page."""
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() or "" for page in reader.pages)
