"""Public verification pages: plain server-rendered HTML, no script, no login.

Approval's documents page (``/verify``) and license's certificates page (``/licences/verify``) show
the same kind of answer: a headline (genuine and in force, genuine but no longer in force, or
failed), the facts the verifier established, and two forms (upload the PDF, or type its number).
Each service turns its own verification result into a ``PageResult``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

STYLE = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;max-width:46rem;margin:2rem auto;
padding:0 1rem;color:#222}
h1{font-size:1.5rem}form{margin:1rem 0;padding:1rem;border:1px solid #ccc;border-radius:6px}
input[type=text]{width:100%;padding:.4rem;margin:.3rem 0}button{padding:.4rem 1.2rem}
.result{padding:1rem;border-radius:6px;margin:1rem 0}.genuine{background:#e7f6ea;border:2px solid #2e7d32}
.forged{background:#fdecea;border:2px solid #c62828}.verdict{font-size:1.4rem;font-weight:bold}
dt{font-weight:bold;float:left;width:8rem;clear:left}dd{margin-left:8.5rem}
"""


@dataclass(frozen=True, slots=True)
class PageResult:
    """What a page shows of one verification."""

    genuine: bool  # sealed by a trusted seal, content intact, in the register
    in_force: bool | None  # still valid (not revoked, suspended, expired, superseded)
    headline: str
    failure: str | None
    rows: Sequence[tuple[str, str | None]]  # label, value (rows without a value are left out)


@dataclass(frozen=True, slots=True)
class PageForm:
    """The texts and the number field of a service's page."""

    title: str  # <title>, Chinese and English
    heading: str
    intro: str
    action: str  # where both forms go (relative to the page)
    number_label: str
    number_param: str
    optional: Sequence[tuple[str, str]] = field(default_factory=tuple)  # label, hex field name


def yes_no(value: bool | None, yes: str, no: str) -> str:
    """是/否 for a known answer, — for an unknown one."""
    return "—" if value is None else (yes if value else no)


def _result(result: PageResult) -> str:
    good = result.genuine and result.in_force is not False
    css = "genuine" if good else "forged"
    items = "".join(
        f"<dt>{escape(label)}</dt><dd>{escape(str(value))}</dd>"
        for label, value in result.rows
        if value
    )
    return (
        f'<section id="result" class="result {css}" data-genuine="{str(good).lower()}" '
        f'data-failure="{escape(result.failure or "")}">'
        f'<div class="verdict">{escape(result.headline)}</div><dl>{items}</dl></section>'
    )


def verification_page(
    form: PageForm, result: PageResult | None, *, number: str = "", error: str | None = None
) -> str:
    """The page, with a result (or an error about the upload) when there is one."""
    body = _result(result) if result is not None else ""
    if error:
        body = f'<section id="result" class="result forged" data-genuine="false">{escape(error)}</section>'
    optional = "".join(
        f'<label>{escape(label)}（可选）：<input type="text" name="{escape(name)}" '
        f'pattern="[0-9a-fA-F]{{64}}"></label>'
        for label, name in form.optional
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(form.title)}</title><style>{STYLE}</style></head>
<body><h1>{escape(form.heading)}</h1>
<p>{escape(form.intro)}</p>
{body}
<form method="post" action="{escape(form.action)}" enctype="multipart/form-data">
<label>上传 PDF 文件：<input type="file" name="file" accept="application/pdf" required></label>
<button type="submit">核验文件</button></form>
<form method="get" action="{escape(form.action)}">
<label>{escape(form.number_label)}：<input type="text" name="{escape(form.number_param)}" value="{escape(number)}" required></label>
{optional}
<button type="submit">按编号核验</button></form>
</body></html>"""
