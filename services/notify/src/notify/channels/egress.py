"""Where notify may send a request an enterprise chose (webhooks): public addresses only (SSRF).

A webhook URL is someone else's input. It must not steer notify's requests into the data centre:
loopback, private, link-local, shared (CGNAT), multicast, reserved and cloud metadata addresses
are refused in every spelling an HTTP client or resolver accepts (``2130706433``, ``127.1``,
``0x7f000001``, ``0177.0.0.1``, ``localhost.``, ``[::ffff:127.0.0.1]``, NAT64 and 6to4 forms), and
so are single-label and internal host names. The check runs when the webhook is registered and
again on the *resolved* addresses before every delivery, and the delivery connects to the very
address that was checked (DNS rebinding cannot swap it between check and connect).

Development and tests may allow loopback, and only loopback, with
``NOTIFY_WEBHOOK_ALLOW_LOOPBACK=true`` (refused in production).

The port must be one the worker's network lets out (``NOTIFY_WEBHOOK_PORTS``, 443 as deployed):
a webhook on any other port would be accepted and then never arrive.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services of the clouds Chinese cities use, named explicitly although their ranges are
# refused anyway (Alibaba Cloud's 100.100.100.200 is in the shared 100.64.0.0/10 range).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, Huawei Cloud, OpenStack, Azure, GCP
        "169.254.0.23",  # Tencent Cloud (metadata.tencentyun.com)
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
# Names that only mean something inside a network (RFC 6761, RFC 8375, cluster DNS, clouds).
INTERNAL_SUFFIXES = (
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home.arpa",
    "corp",
    "svc",
    "cluster.local",
    "in-addr.arpa",
    "ip6.arpa",
    "metadata.tencentyun.com",
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# A part of an IPv4 address as inet_aton (and so curl, browsers and resolvers) reads it.
_NUMBER = re.compile(r"^(?:0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$")


class DestinationRefused(Exception):
    """The destination is not a public address (or a name that may only resolve to one)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Resolver = Callable[[str, int], Awaitable[list[str]]]


# Enterprises' webhook names are looked up in threads of their own. The system resolver keeps its
# thread until the name servers answer or its own timeout ends (tens of seconds for a domain
# whose servers are gone), whatever ``resolve_timeout`` gave up waiting after; in the loop's
# default executor a few such names took every thread that the SMTP server's, the SMS gateway's,
# approval's and the database's lookups (and the .eml files) wait for, holding up every channel.
# A lookup still queued here when its wait is given up is dropped, never run.
_RESOLVER_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="notify-webhook-dns")


# The lookup of each name under way: every delivery to that name waits for the one lookup, so that
# a dead domain holds one of the threads above, not one per delivery (an enterprise's burst, or
# the retries of its notices, would otherwise take all eight, and every other enterprise's
# webhooks would wait behind them). A lookup nobody waits for any more and not yet started is
# dropped.
@dataclass(slots=True)
class _Lookup:
    future: concurrent.futures.Future[Any]
    waiters: int = 0


_IN_FLIGHT: dict[tuple[str, int], _Lookup] = {}
# Names whose name servers did not answer, until when they are not asked again: a delivery to one
# fails at once (and is retried with its backoff) rather than taking a thread for the resolver's
# whole timeout again.
_UNANSWERED: dict[tuple[str, int], float] = {}
UNANSWERED_SECONDS = 30.0


def _finished(key: tuple[str, int], lookup: _Lookup, done: concurrent.futures.Future[Any]) -> None:
    """A lookup's end (in its thread): forget it, and remember a name its servers left unanswered."""
    if _IN_FLIGHT.get(key) is lookup:
        del _IN_FLIGHT[key]
    if done.cancelled():
        return
    failed = done.exception()
    if isinstance(failed, socket.gaierror) and failed.errno == socket.EAI_AGAIN:
        _UNANSWERED[key] = time.monotonic() + UNANSWERED_SECONDS
    elif failed is None:
        _UNANSWERED.pop(key, None)


def _retrieved(answer: asyncio.Future[Any]) -> None:
    if not answer.cancelled():
        answer.exception()


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for a host name (in the webhook DNS threads; one
    lookup at a time per name, shared by whoever asks meanwhile; a name whose servers did not
    answer is not asked again for ``UNANSWERED_SECONDS``)."""
    key = (host, port)
    if _UNANSWERED.get(key, 0.0) > time.monotonic():
        raise socket.gaierror(socket.EAI_AGAIN, "the name's servers did not answer lately")
    lookup = _IN_FLIGHT.get(key)
    if lookup is None or lookup.future.done():
        lookup = _Lookup(
            _RESOLVER_THREADS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        )
        _IN_FLIGHT[key] = lookup
        lookup.future.add_done_callback(partial(_finished, key, lookup))
    lookup.waiters += 1
    try:
        # A caller that stops waiting (its ``resolve_timeout``) leaves the lookup to the others.
        answer = asyncio.wrap_future(lookup.future)
        answer.add_done_callback(_retrieved)  # its failure is ours to report, not the loop's
        infos = await asyncio.shield(answer)
    finally:
        lookup.waiters -= 1
        if lookup.waiters == 0:
            lookup.future.cancel()  # dropped if still queued; a running lookup runs on
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which destinations outbound requests chosen by users may reach."""

    allow_loopback: bool = False
    denied_suffixes: tuple[str, ...] = ()
    resolve_timeout: float = 3.0
    # The TCP ports a destination may use; empty: any (development and tests).
    ports: tuple[int, ...] = ()

    def check_port(self, port: int) -> None:
        """Refuse a port outside ``ports`` (the message names the allowed ones)."""
        if self.ports and port not in self.ports:
            allowed = "、".join(str(p) for p in self.ports)
            raise DestinationRefused(f"回调地址的端口 {port} 不可用，只允许端口 {allowed}")

    def normalise_host(self, host: str) -> str:
        """The host in one spelling: lower case, IDNA, without the root's trailing dot."""
        host = host.strip().lower()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if ":" in host:
            return host  # an IPv6 literal; checked as an address
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise DestinationRefused("回调地址的主机名无效") from exc
        return host.rstrip(".")

    def literal(self, host: str) -> IPAddress | None:
        """The address a host spelled as an IP literal means, in any spelling; None for a name."""
        if ":" in host:
            try:
                return ipaddress.IPv6Address(host)
            except ValueError as exc:
                raise DestinationRefused("回调地址的 IPv6 地址无效") from exc
        parts = host.split(".")
        if not (parts[-1].isdigit() or _NUMBER.match(parts[-1])):
            return None
        # A host whose last label is a number is an IPv4 address to URL parsers, never a name.
        if len(parts) > 4 or not all(_NUMBER.match(p) for p in parts):
            raise DestinationRefused("回调地址的 IP 地址无效")
        numbers = [_ipv4_part(p) for p in parts]
        last_bits = 8 * (5 - len(parts))
        if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 1 << last_bits:
            raise DestinationRefused("回调地址的 IP 地址无效")
        value = numbers[-1]
        for index, number in enumerate(numbers[:-1]):
            value |= number << (24 - 8 * index)
        return ipaddress.IPv4Address(value)

    def check_address(self, address: IPAddress) -> None:
        """Refuse any address that is not public (loopback only when explicitly allowed)."""
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            self.check_address(embedded)
        if address.is_loopback and self.allow_loopback:
            return
        if (
            address in METADATA_ADDRESSES
            or not address.is_global
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
            or address.is_loopback
            or address.is_link_local
            or address.is_private
        ):
            raise DestinationRefused("回调地址不能指向内部网络、本机或保留地址")

    def check_host(self, host: str) -> IPAddress | None:
        """Check a URL's host before any lookup; the address when it is a literal."""
        name = self.normalise_host(host)
        if not name:
            raise DestinationRefused("回调地址缺少主机名")
        address = self.literal(name)
        if address is not None:
            self.check_address(address)
            return address
        if self.allow_loopback and name == "localhost":
            return None
        labels = name.split(".")
        if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
            # ``approval``, ``postgres``: names that only resolve inside a network.
            raise DestinationRefused("回调地址须为公网域名")
        for suffix in (*INTERNAL_SUFFIXES, *self.denied_suffixes):
            suffix = suffix.lower().strip(".")
            if suffix and (name == suffix or name.endswith("." + suffix)):
                raise DestinationRefused("回调地址不能指向内部网络域名")
        return None

    async def resolve(
        self, host: str, port: int, resolver: Resolver | None = None
    ) -> list[IPAddress]:
        """The checked addresses of a host: every one must be public, or none is used.

        Refusing when any address is internal (not only the first) keeps a name that answers
        with a public and a private address from reaching the private one on a retry.
        """
        self.check_port(port)
        literal = self.check_host(host)
        if literal is not None:
            return [literal]
        name = self.normalise_host(host)
        resolve = resolver or system_resolve
        try:
            answers = await asyncio.wait_for(resolve(name, port), timeout=self.resolve_timeout)
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise LookupError("回调地址的域名无法解析") from exc
        addresses: list[IPAddress] = []
        for answer in answers:
            address = ipaddress.ip_address(answer.split("%", 1)[0])
            self.check_address(address)
            addresses.append(address)
        if not addresses:
            raise LookupError("回调地址的域名无法解析")
        return addresses


def _ipv4_part(part: str) -> int:
    """One dotted part as inet_aton reads it: ``0x`` hexadecimal, leading ``0`` octal."""
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64) or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
