"""The addresses notices go to, and what of them staff may read.

A notice goes to the recipient's email or mobile number as its profile holds it when the notice is
sent (``contact_now``), and an address quoted back by a mail server or SMS gateway is stored masked
(``mask_contacts``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from notify.models import Channel

# A mailbox (its local part is masked) and a mainland mobile number, +86 or not (its middle four).
_MAILBOX = re.compile(r"([^\s@<>()\[\]:;,\"'/\\]+)@([^\s@<>()\[\]:;,\"'/\\]+)")
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?(1[3-9][0-9])([0-9]{4})([0-9]{4})(?![0-9])")


def mask_contacts(text: str) -> str:
    """``text`` with every mailbox and mobile number in it masked (``z***@example.com``,
    ``139****5678``).

    What a delivery records of a failed attempt is read by staff (``GET /deliveries``) and kept
    for as long as the delivery: an SMTP server's refusal and an SMS provider's answer name the
    address they refused, which staff do not need to know (个人信息保护法第六条、第五十一条).
    """
    text = _MAILBOX.sub(lambda m: f"{m.group(1)[:1]}***@{m.group(2)}", text)
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


@dataclass(frozen=True, slots=True)
class Contact:
    """Where an email or SMS goes now: the recipient's address in force, or why it may not go."""

    address: str | None
    refusal: str | None = None


SEND_AS_IS = Contact(None)
CONTACT_FIELDS: dict[str, str] = {Channel.EMAIL.value: "email", Channel.SMS.value: "mobile"}


def contact_now(row: Any, profile: Any) -> Contact:
    """The address an email or SMS delivery goes to when it is sent, from the recipient's profile
    as it stands then, not as it stood when the event arrived.

    A notice waits in the queue for quiet hours, a rate limit, retries or a replay. Meanwhile the
    enterprise may change its mailbox or give up its number (which the operator then gives to
    someone else): the notice goes to the address it now designates, and one whose address it
    withdrew goes nowhere; an electronic service counts only at an address the recipient agreed
    to (民事诉讼法第九十条), and a number given up is a stranger's (个人信息保护法第十条). A
    channel it turned off for ordinary notices is off for those already waiting too; a
    statutory (critical) notice ignores that, as at fan-out.
    """
    current = getattr(profile, CONTACT_FIELDS[row.channel], None) if profile else None
    disabled = list(profile.disabled_channels or []) if profile is not None else []
    if not row.critical and row.channel in disabled:
        return Contact(None, "收件人已关闭该渠道的非法定通知，未发送")
    if not current:
        return Contact(None, "收件人已删除该联系方式，未发送")
    return Contact(current)
