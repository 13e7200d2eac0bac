"""The public verification page of notices and decisions (``/verify``; govshared.seal.page)."""

from __future__ import annotations

from approval.documents.schemas import Verification
from govshared.seal.page import PageForm, PageResult, verification_page, yes_no

FORM = PageForm(
    title="电子文书核验 Document verification",
    heading="电子文书核验",
    intro="核验行政许可文书（受理通知书、补正告知书、不予受理通知书、准予/不予行政许可决定书）"
    "是否由本机关签发、内容是否被篡改、是否仍然有效；以及申请人以电子签名签署的告知承诺书、"
    "送达回证的签署人及其证书在签署时是否有效。无需登录。",
    action="verify",
    number_label="文书编号",
    number_param="number",
    optional=(("文件 SHA-256", "sha256"),),
)


def _intact(result: Verification) -> bool | None:
    if result.failure in (
        None,
        "seal_not_valid_at_signing",
        "certificate_expired",
        "certificate_revoked",
        "certificate_subject_mismatch",
    ):
        return True
    if result.failure in ("digest_mismatch", "bad_signature", "file_altered"):
        return False
    return None


def page_result(result: Verification) -> PageResult:
    """A document verification as the page shows it."""
    if result.signature_type == "applicant_signature":
        return _signed_result(result)
    good = result.genuine and result.still_valid is not False
    headline = (
        "✔ 真实有效"
        if good
        else ("⚠ 文书真实，但已撤销" if result.genuine else "✘ 核验未通过：伪造或被篡改")
    )
    return PageResult(
        genuine=result.genuine,
        in_force=result.still_valid,
        headline=headline,
        failure=result.failure,
        rows=[
            ("核验结论", result.verdict),
            ("文书编号", result.number),
            ("文书名称", result.title),
            ("申请人", result.applicant_name),
            ("事项", result.item_name),
            ("签发机关（印章）", result.authority),
            ("印章编码", result.seal_id),
            ("签发日期", result.issued_on.isoformat() if result.issued_on else None),
            ("内容未被篡改", yes_no(_intact(result), "是", "否")),
            ("与存档文件一致", yes_no(result.unaltered, "是（SHA-256 相同）", "否")),
            ("仍然有效", yes_no(result.still_valid, "是", "否（已撤销）")),
            ("失败原因", result.reason),
        ],
    )


def _signed_result(result: Verification) -> PageResult:
    """A document the applicant signed: who signed, and whether the certificate held then."""
    validity = None
    if result.certificate_not_before and result.certificate_not_after:
        validity = (
            f"{result.certificate_not_before:%Y-%m-%d} 至 {result.certificate_not_after:%Y-%m-%d}"
        )
    return PageResult(
        genuine=result.genuine,
        in_force=result.still_valid,
        headline="✔ 申请人电子签名真实有效" if result.genuine else "✘ 核验未通过：伪造或被篡改",
        failure=result.failure,
        rows=[
            ("核验结论", result.verdict),
            ("文书编号", result.number),
            ("文书名称", result.title),
            ("事项", result.item_name),
            ("签署人", result.signer),
            ("印章类型", result.seal_kind),
            ("签署时间", f"{result.signed_at:%Y-%m-%d %H:%M:%S %Z}" if result.signed_at else None),
            ("证书序列号", result.certificate_serial),
            ("证书颁发机构", result.certificate_issuer),
            ("证书有效期", validity),
            (
                "签署时证书有效",
                yes_no(result.certificate_valid_at_signing, "是（信任链、有效期、未吊销）", "否"),
            ),
            ("签署时吊销状态", result.revocation_at_signing),
            ("内容未被篡改", yes_no(_intact(result), "是", "否")),
            ("与存档文件一致", yes_no(result.unaltered, "是（SHA-256 相同）", "否")),
            ("失败原因", result.reason),
        ],
    )


def verify_page(result: Verification | None, *, number: str = "", error: str | None = None) -> str:
    """The page, with a result when there is one."""
    shown = page_result(result) if result is not None else None
    return verification_page(FORM, shown, number=number, error=error)
