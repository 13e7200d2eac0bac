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

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, SimpleDocTemplate

from govshared.chinatime import (
    china_date_text as china_date_text,
)  # where it lived; kept for callers
from govshared.seal import SealSignature, canonical_json
from govshared.seal.qr import qr_rows, rows_path

FONT = "STSong-Light"
SEAL_RED = Color(0.86, 0.08, 0.12)


class _RememberedWidths(UnicodeCIDFont):
    """STSong-Light that remembers the widths it measured: CJK line breaking measures every
    character of every paragraph, the same few hundred characters on every document."""

    def __init__(self, face: str) -> None:
        super().__init__(face)
        self._widths: dict[tuple[str | bytes, float], float] = {}

    def stringWidth(self, text: str | bytes, size: float, encoding: str | None = None) -> float:
        """The width of ``text`` at ``size`` points."""
        key = (text, size)
        width = self._widths.get(key)
        if width is None:
            width = super().stringWidth(text, size, encoding)
            if len(self._widths) < 65536:
                self._widths[key] = width
        return width


pdfmetrics.registerFont(_RememberedWidths(FONT))


def qr_matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """The modules of a QR code of ``text`` (error correction level M, mask 0), row by row from
    the top (``govshared.seal.qr``: segno's symbol, made from per-version tables)."""
    return tuple(tuple(module == "1" for module in row) for row in qr_rows(text))


def qr_path(text: str) -> str:
    """The QR code of ``text`` as PDF path operators in module units (row 0 at the top, the
    quiet zone left out), one rectangle per run of dark modules in a row, filled at once."""
    return rows_path(qr_rows(text))


def draw_qr(canvas: Any, *, text: str, x: float, y: float, size: float) -> None:
    """A QR code of ``text`` with its lower-left corner at (x, y), with its 4-module quiet zone.

    Drawn as one path in module units under a scaling transform, written as PDF operators
    (``addLiteral``): a call of reportlab's ``rect`` per run of modules, each formatting its
    coordinates, cost 2.4 ms a document (a third of the layout), the path a tenth of that.
    """
    rows = qr_rows(text)
    module = size / (len(rows) + 8)
    canvas.saveState()
    canvas.setFillColorRGB(0, 0, 0)
    canvas.transform(module, 0, 0, module, x + 4 * module, y + 4 * module)
    canvas.addLiteral(rows_path(rows))
    canvas.restoreState()


_FONT_PLACEHOLDER = "/GovsharedSealFont"


@functools.lru_cache(maxsize=64)
def round_seal_operators(radius: float, name: str) -> str:
    """The red round seal centred on the origin as PDF operators, the font's resource name left
    as a placeholder: made once per authority and size, it is the same on every document.

    Built with reportlab's own path and text objects on a scratch canvas (their ``getCode``), so
    the operators and the CID font's encoding of the name are reportlab's; only the font's name in
    the scratch document is swapped for the placeholder.
    """
    scratch = Canvas(io.BytesIO())
    red = f"{SEAL_RED.red:.4g} {SEAL_RED.green:.4g} {SEAL_RED.blue:.4g}"
    parts = [f"{red} RG {red} rg 2.2 w"]
    ring = scratch.beginPath()
    ring.circle(0, 0, radius)
    parts.append(ring.getCode() + " S")
    star = scratch.beginPath()
    outer, inner = radius * 0.3, radius * 0.12
    for i in range(10):
        r = outer if i % 2 == 0 else inner
        angle = math.pi / 2 + i * math.pi / 5
        px, py = r * math.cos(angle), r * math.sin(angle)
        if i == 0:
            star.moveTo(px, py)
        else:
            star.lineTo(px, py)
    star.close()
    parts.append(star.getCode() + " f")
    chars = list(name)[:20] or ["章"]
    font_size = min(radius * 0.28, 2 * math.pi * radius * 0.62 / len(chars))
    span = min(250.0, 16.0 * len(chars))  # degrees of arc the name takes
    text = scratch.beginText()
    text.setFont(FONT, font_size)
    for i, char in enumerate(chars):
        # Each character upright on the arc: rotated about the centre, centred on its slot.
        turn = math.radians(span / 2 - (span * (i + 0.5) / len(chars)))
        cos, sin = math.cos(turn), math.sin(turn)
        dx = -pdfmetrics.stringWidth(char, FONT, font_size) / 2
        dy = radius - font_size - 3
        text.setTextTransform(cos, sin, -sin, cos, cos * dx - sin * dy, sin * dx + cos * dy)
        text.textOut(char)
    scratch_font = _font_name(scratch)
    parts.append(text.getCode().replace(scratch_font + " ", _FONT_PLACEHOLDER + " "))
    return "\n".join(parts)


def _font_name(canvas: Any) -> str:
    """The resource name (``/F2``…) the canvas's document gives ``FONT`` (registering it)."""
    probe = canvas.beginText()
    probe.setFont(FONT, 1)
    return str(probe.getCode().split(" Tf")[0].rsplit(" ", 2)[-2])


def draw_round_seal(canvas: Any, *, x: float, y: float, radius: float, name: str) -> None:
    """A red round official seal: the authority's name along the upper arc, a star in the centre.

    Its operators are made once per authority (``round_seal_operators``): drawn afresh, character
    by character, it cost about 1.4 ms a document.
    """
    canvas.saveState()
    canvas.translate(x, y)
    canvas.addLiteral(
        round_seal_operators(radius, name).replace(
            _FONT_PLACEHOLDER + " ", _font_name(canvas) + " "
        )
    )
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
