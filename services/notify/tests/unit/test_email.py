"""Email bytes built directly: standard parsers read them back exactly."""

from __future__ import annotations

import hashlib
import uuid
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from notify.channels.base import Attachment, ChannelError, OutboundMessage
from notify.channels.email import FileEmailSender, MailRenderer
from notify.models import Channel, DeliveryStatus


def outbound(address: str = "ent@example.com", title: str | None = None) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=uuid.uuid4(),
        channel=Channel.EMAIL,
        address=address,
        title=title or "受理通知：食盐定点批发企业审批（一个很长很长很长很长很长很长的标题）",
        body="您的「食盐定点批发企业审批」申请已受理。\n\n——一网通办",
    )


def test_rendered_mail_parses_back() -> None:
    renderer = MailRenderer("一网通办通知 <noreply@onestop.gov.cn>")
    message = outbound()
    recipient, raw = renderer.render(message)
    assert recipient == "ent@example.com"
    assert renderer.envelope_from == "noreply@onestop.gov.cn"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == message.title
    assert parsed["From"].addresses[0].display_name == "一网通办通知"
    assert parsed["To"] == "ent@example.com"
    assert parsed["X-Onestop-Delivery"] == str(message.delivery_id)
    body = parsed.get_body()
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == message.body


@pytest.mark.parametrize(
    "address", ["no-at-sign", "a@b.c\r\nBcc: x@y.z", "<a@b.c>", "a@b.c, d@e.f", "用户@例子.中国"]
)
def test_unusable_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        MailRenderer("noreply@onestop.gov.cn").render(outbound(address))


async def test_embedded_default_writes_eml_files(tmp_path: Path) -> None:
    sender = FileEmailSender(tmp_path / "mail", sender="一网通办通知 <noreply@onestop.gov.cn>")
    message = outbound()
    outcome = await sender.send(message)
    assert outcome.status is DeliveryStatus.DELIVERED
    written = tmp_path / "mail" / f"{message.delivery_id}.eml"
    parsed = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == message.title
    with pytest.raises(ChannelError) as refused:
        await sender.send(outbound("bad address"))
    assert refused.value.permanent


@pytest.mark.parametrize(
    "filename",
    [
        "JY31000020260001.pdf",
        "310000〔2026〕准许字第3A9F01C2号.pdf",
        "不予行政许可决定书" * 6 + ".pdf",
    ],
)
def test_an_attachment_travels_byte_for_byte_with_its_name(filename: str) -> None:
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 300 + b"\n%%EOF\n"
    message = outbound()
    message = OutboundMessage(
        delivery_id=message.delivery_id,
        channel=Channel.EMAIL,
        address=message.address,
        title=message.title,
        body=message.body,
        attachments=(Attachment(filename, "application/pdf", pdf),),
    )
    _, raw = MailRenderer("一网通办通知 <noreply@onestop.gov.cn>").render(message)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert all(not part.defects for part in parsed.walk())
    body = parsed.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == message.body
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == filename
    assert attachment.get_param("name") == filename
    content = attachment.get_content()
    assert hashlib.sha256(content).hexdigest() == hashlib.sha256(pdf).hexdigest()
