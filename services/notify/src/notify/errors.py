"""Notify's domain errors: each a stable code with Chinese and English titles."""

from __future__ import annotations

from govshared.problems import Conflict, DomainError, NotFound


class MessageNotFound(NotFound):
    code = "message_not_found"
    title = "消息不存在"
    title_en = "Message not found"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"
    title = "投递记录不存在"
    title_en = "Delivery not found"


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    title = "回调订阅不存在"
    title_en = "Webhook subscription not found"


class TemplateNotFound(NotFound):
    code = "template_not_found"
    title = "模板不存在"
    title_en = "Template not found"


class TemplateRenderFailed(DomainError):
    """A template does not compile or lacks a variable: nothing half-empty is ever sent."""

    status = 422
    code = "template_render_failed"
    title = "消息模板渲染失败"
    title_en = "The message template failed to render"


class InvalidWebhookUrl(DomainError):
    status = 422
    code = "invalid_webhook_url"
    title = "回调地址无效"
    title_en = "Invalid webhook URL"


class NotReplayable(Conflict):
    code = "delivery_not_replayable"
    title = "只有死信状态的投递可以重放"
    title_en = "Only dead-lettered deliveries can be replayed"


class InvalidReceipt(DomainError):
    status = 401
    code = "invalid_receipt_signature"
    title = "回执签名无效"
    title_en = "Invalid delivery receipt signature"


class ReceiptsDisabled(DomainError):
    """No receipt secret is configured: no receipt can be authenticated, so none is accepted."""

    status = 403
    code = "receipts_not_configured"
    title = "未配置短信回执密钥"
    title_en = "SMS delivery receipts are not configured"


class TemplateLimitExceeded(TemplateRenderFailed):
    """A template went past a render limit (``limit``: output, steps, time, value_size or
    format_width): refused like a broken template, so that no admin text can stall the service."""

    code = "template_limit_exceeded"
    title = "消息模板超出渲染限制"
    title_en = "The message template exceeded a rendering limit"


class WebhookLimitReached(Conflict):
    """An enterprise has as many webhooks as one may (``webhooks.WEBHOOKS_PER_ENTERPRISE``)."""

    code = "webhook_limit_reached"
    title = "回调订阅数量已达上限"
    title_en = "The enterprise has the most webhook subscriptions allowed"
