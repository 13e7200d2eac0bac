"""The public verification page: plain server-rendered HTML, no script, no login."""

from __future__ import annotations

from html import escape

from approval.documents.schemas import Verification

STYLE = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;max-width:46rem;margin:2rem auto;
padding:0 1rem;color:#222}
h1{font-size:1.5rem}form{margin:1rem 0;padding:1rem;border:1px solid #ccc;border-radius:6px}
input[type=text]{width:100%;padding:.4rem;margin:.3rem 0}button{padding:.4rem 1.2rem}
.result{padding:1rem;border-radius:6px;margin:1rem 0}.genuine{background:#e7f6ea;border:2px solid #2e7d32}
.forged{background:#fdecea;border:2px solid #c62828}.verdict{font-size:1.4rem;font-weight:bold}
dt{font-weight:bold;float:left;width:8rem;clear:left}dd{margin-left:8.5rem}
"""


def _yes_no(value: bool | None, yes: str, no: str) -> str:
    return "—" if value is None else (yes if value else no)


def _intact(result: Verification) -> bool | None:
    if result.failure in (None, "seal_not_valid_at_signing"):
        return True
    if result.failure in ("digest_mismatch", "bad_signature", "file_altered"):
        return False
    return None


def _result(result: Verification) -> str:
    genuine = result.genuine and result.still_valid is not False
    css = "genuine" if genuine else "forged"
    headline = (
        "✔ 真实有效"
        if genuine
        else ("⚠ 文书真实，但已撤销" if result.genuine else "✘ 核验未通过：伪造或被篡改")
    )
    rows = [
        ("核验结论", result.verdict),
        ("文书编号", result.number),
        ("文书名称", result.title),
        ("申请人", result.applicant_name),
        ("事项", result.item_name),
        ("签发机关（印章）", result.authority),
        ("印章编码", result.seal_id),
        ("签发日期", result.issued_on.isoformat() if result.issued_on else None),
        ("内容未被篡改", _yes_no(_intact(result), "是", "否")),
        ("与存档文件一致", _yes_no(result.unaltered, "是（SHA-256 相同）", "否")),
        ("仍然有效", _yes_no(result.still_valid, "是", "否（已撤销）")),
        ("失败原因", result.reason),
    ]
    items = "".join(
        f"<dt>{escape(label)}</dt><dd>{escape(str(value))}</dd>" for label, value in rows if value
    )
    return (
        f'<section id="result" class="result {css}" data-genuine="{str(genuine).lower()}" '
        f'data-failure="{escape(result.failure or "")}">'
        f'<div class="verdict">{escape(headline)}</div><dl>{items}</dl></section>'
    )


def verify_page(result: Verification | None, *, number: str = "", error: str | None = None) -> str:
    """The page, with a result when there is one."""
    body = _result(result) if result is not None else ""
    if error:
        body = f'<section id="result" class="result forged" data-genuine="false">{escape(error)}</section>'
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>电子文书核验 Document verification</title><style>{STYLE}</style></head>
<body><h1>电子文书核验</h1>
<p>核验行政许可文书（受理通知书、补正告知书、不予受理通知书、准予/不予行政许可决定书）是否由本机关签发、
内容是否被篡改、是否仍然有效。无需登录。</p>
{body}
<form method="post" action="verify" enctype="multipart/form-data">
<label>上传 PDF 文件：<input type="file" name="file" accept="application/pdf" required></label>
<button type="submit">核验文件</button></form>
<form method="get" action="verify">
<label>文书编号：<input type="text" name="number" value="{escape(number)}" required></label>
<label>文件 SHA-256（可选）：<input type="text" name="sha256" pattern="[0-9a-fA-F]{{64}}"></label>
<button type="submit">按编号核验</button></form>
</body></html>"""
