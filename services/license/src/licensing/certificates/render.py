"""The licence certificate as a PDF, and reading its sealed content back out of a PDF.

The page shows the certificate's fields, the seal's image and a QR code that opens the public
verification with the licence number, version and the SM3 digest of the signed content. The signed
content and the seal's signature travel inside the PDF as an embedded file
(``onestop-licence.json``), so that the file alone is enough to verify it (drawing and embedding:
``govshared.seal.pdf``).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.enums import TA_CENTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from govshared.seal import SealSignature
from govshared.seal.pdf import FONT, SealBlock, china_date_text, sealed_pdf
from govshared.seal.pdf import read_sealed as read_sealed_attachment

ATTACHMENT = "onestop-licence.json"
_TITLE = ParagraphStyle("title", fontName=FONT, fontSize=24, leading=32, alignment=TA_CENTER)
_SUB = ParagraphStyle("sub", fontName=FONT, fontSize=12, leading=18, alignment=TA_CENTER)
_CELL = ParagraphStyle("cell", fontName=FONT, fontSize=12, leading=18, wordWrap="CJK")
_SMALL = ParagraphStyle("small", fontName=FONT, fontSize=8, leading=11, wordWrap="CJK")


def printed_fields(content: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of the certificate's table, labelled in Chinese, as printed."""
    valid_until = content.get("valid_until")
    validity = (
        f"{china_date_text(content['valid_from'])} 至 "
        f"{china_date_text(valid_until) if valid_until else '长期'}"
    )
    return [
        ("证照编号", content["licence_no"]),
        ("持证主体", content["holder_name"]),
        ("统一社会信用代码", content["holder_uscc"]),
        ("发证机关", content["issuing_authority"]),
        ("发证日期", china_date_text(content["issued_on"])),
        ("有效期限", validity),
        *((str(k), str(v)) for k, v in sorted(content.get("particulars", {}).items())),
    ]


def render_certificate(
    *, content: dict[str, Any], signature: SealSignature, verify_url: str, qr: str
) -> bytes:
    """The certificate of one licence version, sealed: the signed content embedded in it."""
    table = Table(
        [
            [Paragraph(escape(k), _CELL), Paragraph(escape(v), _CELL)]
            for k, v in printed_fields(content)
        ],
        colWidths=[40 * mm, 120 * mm],
    )
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story: list[Flowable] = [
        Paragraph("中华人民共和国", _SUB),
        Spacer(1, 3 * mm),
        Paragraph(escape(content["title"]), _TITLE),
        Spacer(1, 2 * mm),
        Paragraph(escape(f"（电子证照 第{content['version']}版）"), _SUB),
        Spacer(1, 8 * mm),
        table,
        Spacer(1, 10 * mm),
        SealBlock(
            authority=content["issuing_authority"],
            seal_authority=signature.seal.authority,
            date_text=china_date_text(content["issued_on"]),
            qr=qr,
        ),
        Spacer(1, 4 * mm),
        Paragraph(
            escape(
                f"本证照加盖电子印章（印章编码 {signature.seal.seal_id}，SM2/SM3，GB/T 38540）。"
                f"扫描二维码或访问 {verify_url} 核验本证照的真伪及当前状态。"
                f"内容摘要（SM3）：{signature.digest}"
            ),
            _SMALL,
        ),
    ]
    return sealed_pdf(
        story,
        title=content["title"],
        subject=content["licence_no"],
        author=content["issuing_authority"],
        creator="一网通办 license service",
        attachment=ATTACHMENT,
        content=content,
        signature=signature,
        metadata={
            "/OnestopLicenceNumber": content["licence_no"],
            "/OnestopLicenceVersion": str(content["version"]),
            "/OnestopContentSM3": signature.digest,
        },
    )


def read_sealed(pdf: bytes) -> tuple[dict[str, Any], SealSignature] | None:
    """The embedded content and signature of a sealed certificate; None when there are none."""
    return read_sealed_attachment(pdf, ATTACHMENT)
