"""The public verification page of electronic licences (``/licences/verify``; govshared.seal.page).

The QR code printed on every certificate opens it with the licence number, version and content
digest, so a person who scans a certificate sees at once whether it is genuine and whether the
licence is in force today (a suspended, revoked, expired or superseded one says so).
"""

from __future__ import annotations

from govshared.seal.page import PageForm, PageResult, verification_page, yes_no
from licensing.licences.schemas import LicenceVerification, VerificationResult

FORM = PageForm(
    title="电子证照核验 Licence verification",
    heading="电子证照核验",
    intro="核验电子证照是否由发证机关签发（电子印章）、内容是否被篡改、证照当前是否有效。无需登录。",
    action="verify",
    number_label="证照编号",
    number_param="licence_no",
    optional=(("文件 SHA-256", "sha256"),),
)
HEADLINES = {
    VerificationResult.VALID: "✔ 真实有效",
    VerificationResult.NOT_VALID: "⚠ 证照真实，但当前不是有效状态",
    VerificationResult.NOT_FOUND: "✘ 证照库中查无此证照",
    VerificationResult.FORGED: "✘ 核验未通过：伪造或被篡改",
}


def page_result(result: LicenceVerification) -> PageResult:
    """A licence verification as the page shows it."""
    validity = None
    if result.valid_from:
        until = result.valid_until.isoformat() if result.valid_until else "长期"
        validity = f"{result.valid_from.isoformat()} 至 {until}"
    return PageResult(
        genuine=result.genuine,
        in_force=result.valid_now if result.genuine else None,
        headline=HEADLINES[result.result],
        failure=result.failure,
        rows=[
            ("核验结论", result.message),
            ("证照编号", result.licence_no),
            ("证照名称", result.licence_type_name),
            ("版本", f"第{result.version}版" if result.version else None),
            ("持证主体", result.holder_name),
            ("统一社会信用代码", result.holder_uscc),
            ("发证机关（印章）", result.seal_authority or result.issuing_authority),
            ("印章编码", result.seal_id),
            ("发证日期", result.issued_on.isoformat() if result.issued_on else None),
            ("有效期限", validity),
            ("证照状态", result.status_label),
            ("与存档文件一致", yes_no(result.unaltered, "是（SHA-256 相同）", "否")),
            ("当前有效", yes_no(result.valid_now, "是", "否") if result.genuine else None),
            ("失败原因", result.reason),
            ("核验日期", result.checked_on.isoformat()),
        ],
    )


def licence_page(
    result: LicenceVerification | None, *, number: str = "", error: str | None = None
) -> str:
    """The page, with a result when there is one."""
    shown = page_result(result) if result is not None else None
    return verification_page(FORM, shown, number=number, error=error)
