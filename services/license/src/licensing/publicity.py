"""What the register shows the public of a licence holder."""

from __future__ import annotations

# 登记管理部门代码 9 (市场监管) with 机构类别代码 2: 个体工商户 (GB 32100-2015 and its annex).
INDIVIDUAL_BUSINESS_PREFIX = "92"


def public_name(name: str, uscc: str) -> str:
    """The holder's name as published: a 个体工商户's (USCC ``92…``) is often its owner's own
    name, personal information (个人信息保护法 Art. 4), so only its first character is shown."""
    if uscc.startswith(INDIVIDUAL_BUSINESS_PREFIX):
        return name[:1] + "*" * max(len(name) - 1, 2)
    return name
