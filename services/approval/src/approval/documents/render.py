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

from govshared.seal import SealSignature, canonical_json, direct
from govshared.seal.pdf import FONT, SealBlock, china_date_text, embed, layout_pdf
from govshared.seal.pdf import extract_text as extract_text
from govshared.seal.pdf import read_sealed as read_sealed_attachment

ATTACHMENT = "onestop-seal.json"
SIGNED_ATTACHMENT = "onestop-signature.json"  # approval.documents.signed

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


_D_TITLE = direct.Style(size=22, leading=30, align="center")
_D_NUMBER = direct.Style(size=12, leading=18, align="center")
_D_BODY = direct.Style(size=13, leading=22, align="justify", first_indent=26)
_D_ADDRESSEE = direct.Style(size=13, leading=22, align="justify")
_D_SMALL = direct.Style(size=8, leading=11)


def render_pdf(
    *, content: dict[str, Any], signature: SealSignature, verify_url: str, qr: str
) -> bytes:
    """The document as a PDF with its seal and QR code; the signed content embedded in it.

    Written directly (``govshared.seal.direct``), with the layout platypus gave it: the sealer's
    CPU a document was mostly reportlab's layout and serialisation.
    """
    blocks: list[direct.Block] = [
        direct.Text(content["authority"], _D_NUMBER),
        direct.Space(4 * mm),
        direct.Text(content["title"], _D_TITLE),
        direct.Space(2 * mm),
        direct.Text(content["number"], _D_NUMBER),
        direct.Space(8 * mm),
        direct.Text(
            f"{content['applicant_name']}（统一社会信用代码：{content['applicant_uscc']}）：",
            _D_ADDRESSEE,
        ),
        *(direct.Text(text, _D_BODY) for text in content["paragraphs"]),
        direct.Space(10 * mm),
        direct.Seal(
            authority=content["authority"],
            seal_authority=signature.seal.authority,
            date_text=china_date_text(content["issued_on"]),
            qr=qr,
        ),
        direct.Space(4 * mm),
        direct.Text(
            f"本文书加盖电子印章（印章编码 {signature.seal.seal_id}，SM2/SM3，GB/T 38540）。"
            f"核验地址：{verify_url}　文书编号：{content['number']}　"
            f"内容摘要（SM3）：{signature.digest}",
            _D_SMALL,
        ),
    ]
    return direct.write_pdf(
        direct.lay_out(blocks),
        info={
            "Title": content["title"],
            "Subject": content["number"],
            "Author": content["authority"],
            "Creator": "一网通办 approval service",
            "OnestopDocumentNumber": content["number"],
            "OnestopContentSM3": signature.digest,
        },
        attachment=ATTACHMENT,
        data=canonical_json({"content": content, "signature": signature.model_dump(mode="json")}),
    )


# What a check reads of a sealed document's embedded content and shows: text (or absent) in every
# document this system seals.
DESCRIBED = ("number", "title", "application_no", "applicant_name", "item_name", "authority")


def read_sealed(pdf: bytes) -> tuple[dict[str, Any], SealSignature] | None:
    """The embedded content and signature of a sealed document; None when there are none, or when
    the content is not in the form this system seals (a crafted file: not ours)."""
    try:
        found = read_sealed_attachment(pdf, ATTACHMENT)
    except RecursionError:  # JSON nested deeper than the parser goes
        return None
    if found is None or not all(isinstance(found[0].get(k), str | None) for k in DESCRIBED):
        return None
    return found


def _signed_body(kind: str, content: dict[str, Any]) -> list[Flowable]:
    party = f"{content['applicant_name']}（统一社会信用代码：{content['applicant_uscc']}）"
    item = f"{content['item_name']}（事项编码 {content['item_code']}）"
    if kind == "commitment":
        lines = [f"承诺人：{party}", f"申请事项：{item}"]
        story: list[Flowable] = [Paragraph(escape(line), _ADDRESSEE) for line in lines]
        story.append(Spacer(1, 4 * mm))
        story += [
            Paragraph(escape(text), _BODY)
            for text in str(content["text"]).splitlines()
            if text.strip()
        ]
        story.append(Paragraph(escape(f"承诺书文本（SHA-256）：{content['text_sha256']}"), _SMALL))
        return story
    lines = [
        f"受送达人：{party}",
        f"申请事项：{item}　申请编号：{content['application_no']}",
        f"送达文书：{content['document_title']}（{content['document_number']}）",
        f"文书日期：{china_date_text(content['document_issued_on'])}",
        f"文书 PDF（SHA-256）：{content['document_pdf_sha256']}",
    ]
    story = [Paragraph(escape(line), _ADDRESSEE) for line in lines]
    story += [Spacer(1, 4 * mm), Paragraph(escape(str(content["statement"])), _BODY)]
    return story


def render_signed_pdf(
    *,
    kind: str,
    number: str,
    title: str,
    content: dict[str, Any],
    record: dict[str, Any],
    signed_on: str,
    verify_url: str,
    qr: str,
    payload: bytes,
) -> bytes:
    """A document the applicant signed: its text, the applicant's seal, a QR code; embedded, the
    signed bytes, the SM2 signature and the signer's certificate (``payload``)."""
    role = "承诺人" if kind == "commitment" else "受送达人"
    # A 送达回证 a person signed for the enterprise names that person (masked) as 签收人.
    personal = record.get("seal_kind") == "个人签名"
    signed_by = (
        f"签收人（电子签名）：{record['signer']}（代{content['applicant_name']}签收）"
        if personal
        else f"{role}（电子签名）：{content['applicant_name']}"
    )
    story: list[Flowable] = [
        Paragraph(escape(title), _TITLE),
        Spacer(1, 2 * mm),
        Paragraph(escape(number), _NUMBER),
        Spacer(1, 8 * mm),
        *_signed_body(kind, content),
        Spacer(1, 10 * mm),
        SealBlock(
            authority=signed_by,
            seal_authority=str(record["signer"] if personal else content["applicant_name"]),
            date_text=china_date_text(signed_on),
            qr=qr,
        ),
        Spacer(1, 4 * mm),
        Paragraph(
            escape(
                f"本文书由{record['signer']}以电子签名签署（{record.get('seal_kind') or '电子印章'}，"
                f"证书序列号 {record['certificate_serial']}，SM2/SM3，《中华人民共和国电子签名法》"
                f"第十三条、第十四条），签名值与签名证书嵌入本文件。签署时间：{record['signed_at']}。"
                f"核验地址：{verify_url}　文书编号：{number}　内容摘要（SM3）：{record['digest']}"
            ),
            _SMALL,
        ),
    ]
    return embed(
        layout_pdf(
            story,
            title=title,
            subject=number,
            author=str(content["applicant_name"]),
            creator="一网通办 approval service",
        ),
        name=SIGNED_ATTACHMENT,
        data=payload,
        metadata={"/OnestopDocumentNumber": number, "/OnestopContentSM3": str(record["digest"])},
    )
