"""The licence certificate as a PDF: the fields it shows, the seal's image and the sealed QR code.

The QR code carries the sealed payload (number, version and content digest) and opens the public
verification endpoint, which also says whether the licence was suspended or revoked since. The PDF
embeds the payload and the certificate fields (``onestop-licence.json``) so that the file can be
checked without scanning.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from govshared.seal import canonical_json
from govshared.seal.pdf import FONT, SealBlock, china_date_text, embed
from licensing.licences.schemas import LicenceOut
from licensing.licences.seal import certificate_fields

ATTACHMENT = "onestop-licence.json"
_TITLE = ParagraphStyle("title", fontName=FONT, fontSize=24, leading=32, alignment=TA_CENTER)
_SUB = ParagraphStyle("sub", fontName=FONT, fontSize=12, leading=18, alignment=TA_CENTER)
_CELL = ParagraphStyle("cell", fontName=FONT, fontSize=12, leading=18, wordWrap="CJK")
_SMALL = ParagraphStyle("small", fontName=FONT, fontSize=8, leading=11, wordWrap="CJK")


def render_certificate(licence: LicenceOut, *, seal_authority: str) -> bytes:
    """The certificate of one licence version."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=25 * mm,
        bottomMargin=20 * mm,
        title=licence.licence_type_name,
        subject=licence.licence_no,
        author=licence.issuing_authority,
        creator="一网通办 license service",
    )
    valid_until = (
        china_date_text(licence.valid_until.isoformat()) if licence.valid_until else "长期"
    )
    rows = [
        ("证照编号", licence.licence_no),
        ("持证主体", licence.holder_name),
        ("统一社会信用代码", licence.holder_uscc),
        ("发证机关", licence.issuing_authority),
        ("发证日期", china_date_text(licence.issued_on.isoformat())),
        (
            "有效期限",
            f"{china_date_text(licence.valid_from.isoformat())} 至 {valid_until}",
        ),
        *((str(k), str(v)) for k, v in sorted(licence.particulars.items())),
    ]
    table = Table(
        [[Paragraph(escape(k), _CELL), Paragraph(escape(v), _CELL)] for k, v in rows],
        colWidths=[40 * mm, 120 * mm],
    )
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story: list[Flowable] = [
        Paragraph("中华人民共和国", _SUB),
        Spacer(1, 3 * mm),
        Paragraph(escape(licence.licence_type_name), _TITLE),
        Spacer(1, 2 * mm),
        Paragraph(escape(f"（电子证照 第{licence.version}版）"), _SUB),
        Spacer(1, 8 * mm),
        table,
        Spacer(1, 10 * mm),
        SealBlock(
            authority=licence.issuing_authority,
            seal_authority=seal_authority,
            date_text=china_date_text(licence.issued_on.isoformat()),
            qr=licence.qr_url,
        ),
        Spacer(1, 4 * mm),
        Paragraph(
            escape(
                f"扫描二维码或访问 {licence.qr_url.split('?')[0]} 核验本证照的真伪及当前状态。"
                f"内容摘要（SHA-256）：{licence.content_hash}"
            ),
            _SMALL,
        ),
    ]
    document.build(story)
    fields = certificate_fields(licence.model_dump())
    return embed(
        buffer.getvalue(),
        name=ATTACHMENT,
        data=canonical_json({"certificate": fields, "qr_payload": licence.qr_payload}),
        metadata={"/OnestopLicenceNumber": licence.licence_no, "/OnestopQR": licence.qr_payload},
    )
