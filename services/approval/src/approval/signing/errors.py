"""Problems of signing sessions (each a stable code a phone can act on)."""

from __future__ import annotations

from govshared.problems import Conflict, DependencyUnavailable, DomainError, NotFound


class SigningSessionNotFound(NotFound):
    code = "signing_session_not_found"
    title = "签署会话不存在"
    title_en = "Signing session not found"


class SigningSessionExpired(DomainError):
    """The session's time ran out before the signature arrived: start a new one."""

    status = 410
    code = "signing_session_expired"
    title = "签署会话已过期，请重新发起签署"
    title_en = "The signing session has expired; start a new one"


class SigningSessionReplayed(Conflict):
    """The session was already signed (with another signature) or already used."""

    code = "signing_session_replayed"
    title = "该签署会话已签署或已使用，不能重复使用"
    title_en = "The signing session has already been signed or used"


class SigningPurposeNotAllowed(DomainError):
    status = 422
    code = "signing_purpose_not_allowed"
    title = "该事项或申请当前不需要、也不能进行此项签署"
    title_en = "This signature cannot be requested for this item or application now"


class SignatureRequired(DomainError):
    """An act the law asks to be signed came without a (signed, unused) session."""

    status = 422
    code = "signature_required"
    title = "此项操作须由申请人以可靠的电子签名签署"
    title_en = "This act must be signed with a reliable electronic signature"


class SigningUnavailable(DependencyUnavailable):
    code = "signing_not_configured"
    title = "电子签名验证服务未配置"
    title_en = "No trusted certification authority is configured for electronic signatures"


class LegalRepresentativeSignatureRequired(SignatureRequired):
    """The item's guide asks for the legal representative's signature and none came with it."""

    code = "legal_representative_signature_required"
    title = "该事项的申请须由法定代表人以电子印章（法定代表人章）签署"
    title_en = "Applications for this item must be signed with the legal representative's seal"


class SealKindNotAccepted(DomainError):
    """The certificate is an electronic seal of another kind than the one the act requires."""

    status = 422
    code = "seal_kind_not_accepted"
    title = "所用电子印章的类型不符合要求"
    title_en = "The electronic seal is not of the kind this signature requires"
