"""PDF layout of notices and decisions, and reading the sealed content back out of a PDF.

The signed content travels inside the PDF as an embedded file (``onestop-seal.json``: the canonical
content and the seal's signature), so that the file alone is enough to verify it; the page shows
the same text, the seal's image and a QR code to the verifier (``govshared.seal.pdf`` draws them).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer

from govshared.seal import SealSignature
from govshared.seal.pdf import FONT, SealBlock, china_date_text, sealed_pdf
from govshared.seal.pdf import extract_text as extract_text
from govshared.seal.pdf import read_sealed as read_sealed_attachment

ATTACHMENT = "onestop-seal.json"

_TITLE = ParagraphStyle("title", fontName=FONT, fontSize=22, leading=30, alignment=TA_CENTER)
_NUMBER = ParagraphStyle("number", fontName=FONT, fontSize=12, leading=18, alignment=TA_CENTER)
_BODY = ParagraphStyle(
    "body",
    fontName=FONT,
    fontSize=13,
    leading=22,
    alignment=TA_JUSTIFY,
    firstLineIndent=26,
    wordWrap="CJK",
)
_ADDRESSEE = ParagraphStyle("addressee", parent=_BODY, firstLineIndent=0)
_SMALL = ParagraphStyle("small", fontName=FONT, fontSize=8, leading=11, wordWrap="CJK")


def render_pdf(
    *, content: dict[str, Any], signature: SealSignature, verify_url: str, qr: str
) -> bytes:
    """The document as a PDF with its seal and QR code; the signed content embedded in it."""
    story: list[Flowable] = [
        Paragraph(escape(content["authority"]), _NUMBER),
        Spacer(1, 4 * mm),
        Paragraph(escape(content["title"]), _TITLE),
        Spacer(1, 2 * mm),
        Paragraph(escape(content["number"]), _NUMBER),
        Spacer(1, 8 * mm),
        Paragraph(
            escape(
                f"{content['applicant_name']}（统一社会信用代码：{content['applicant_uscc']}）："
            ),
            _ADDRESSEE,
        ),
    ]
    story += [Paragraph(escape(text), _BODY) for text in content["paragraphs"]]
    story += [
        Spacer(1, 10 * mm),
        SealBlock(
            authority=content["authority"],
            seal_authority=signature.seal.authority,
            date_text=china_date_text(content["issued_on"]),
            qr=qr,
        ),
        Spacer(1, 4 * mm),
        Paragraph(
            escape(
                f"本文书加盖电子印章（印章编码 {signature.seal.seal_id}，SM2/SM3，GB/T 38540）。"
                f"核验地址：{verify_url}　文书编号：{content['number']}　"
                f"内容摘要（SM3）：{signature.digest}"
            ),
            _SMALL,
        ),
    ]
    return sealed_pdf(
        story,
        title=content["title"],
        subject=content["number"],
        author=content["authority"],
        creator="一网通办 approval service",
        attachment=ATTACHMENT,
        content=content,
        signature=signature,
        metadata={
            "/OnestopDocumentNumber": content["number"],
            "/OnestopContentSM3": signature.digest,
        },
    )


def read_sealed(pdf: bytes) -> tuple[dict[str, Any], SealSignature] | None:
    """The embedded content and signature of a sealed document; None when there are none."""
    return read_sealed_attachment(pdf, ATTACHMENT)
