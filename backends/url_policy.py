"""Which hosts a backend URL may point at (SSRF policy for whoever holds the admin token).

Private ranges stay allowed: backends commonly live on them (``http://10.0.0.5:11434``).
What is denied is link-local and cloud-metadata space, always, plus whatever the operator
lists in ELDRIC_BACKEND_URL_DENY. Every address a name resolves to is checked, so a name
that points at a denied address is denied too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

SETTING = "ELDRIC_BACKEND_URL_DENY"
# Link-local (IPv4 and IPv6), AWS's IPv6 metadata address, and the metadata host names.
DEFAULT_DENY = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "metadata.google.internal", "metadata")
HOST_RULE = re.compile(r"^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# socket.getaddrinfo's signature and result shape: [(family, type, proto, canonname, sockaddr)].
Resolver = Callable[..., list]


class UrlDenied(ValueError):
    """A backend URL points at a denied host; ``str()`` names the rule that matched."""

    def __init__(self, denial: Denial) -> None:
        super().__init__(str(denial))
        self.denial = denial


@dataclass(frozen=True)
class Denial:
    host: str
    rule: str
    address: str | None = None  # the resolved address that matched, when the host is a name

    def __str__(self) -> str:
        via = f" (it resolves to {self.address})" if self.address and self.address != self.host else ""
        return f"host {self.host}{via} is denied by the rule {self.rule} ({SETTING} and the built-in deny list)"


@dataclass(frozen=True)
class UrlPolicy:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    hosts: tuple[str, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> UrlPolicy:
        """The built-in rules plus ``entries``; raises ValueError naming a malformed entry."""
        networks, hosts = [], []
        for raw in (*DEFAULT_DENY, *entries):
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if not HOST_RULE.match(entry):
                raise ValueError(f"{SETTING}: {raw!r} is neither a CIDR, an IP address nor a host name")
            hosts.append(entry.removeprefix("*."))
        return cls(tuple(networks), tuple(hosts))

    def check(self, url: str, *, resolver: Resolver | None = None) -> Denial | None:
        """The rule that denies ``url``, or None. Names are resolved with ``resolver``
        (``socket.getaddrinfo`` by default); a name that does not resolve is not denied here,
        since connecting to it fails anyway."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None  # malformed: the URL validators answer that
        return self.check_host(host, port, resolver=resolver)[0] if host else None

    def check_host(self, host: str, port: int, *, resolver: Resolver | None = None) -> tuple[Denial | None, list[str]]:
        """The rule that denies ``host``, and otherwise the addresses it was checked at (in
        resolver order; empty when it does not resolve). Connecting to exactly those closes
        the gap in which a name could be re-pointed between the check and the connection."""
        host = host.lower().rstrip(".")
        literal = _ip(host)
        if literal is not None:
            return self._check_address(host, literal), [str(literal)]
        for rule in self.hosts:
            if host == rule or host.endswith("." + rule):
                return Denial(host, rule), []
        resolve = resolver or socket.getaddrinfo
        try:
            infos = resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return None, []
        addresses: list[str] = []
        for info in infos:
            address = _ip(str(info[4][0]))
            if address is None:
                continue
            if denial := self._check_address(host, address):
                return denial, []
            if str(address) not in addresses:
                addresses.append(str(address))
        return None, addresses

    def _check_address(self, host: str, address: IPAddress) -> Denial | None:
        for network in self.networks:
            if address.version == network.version and address in network:
                return Denial(host, str(network), str(address))
        return None


def _ip(text: str) -> IPAddress | None:
    """The address in ``text``, unscoped, with IPv4-mapped IPv6 (``::ffff:a.b.c.d``) as IPv4."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def url_policy() -> UrlPolicy:
    """The policy the settings describe (cheap to build: a handful of rules)."""
    from django.conf import settings

    return UrlPolicy.parse(settings.ELDRIC_BACKEND_URL_DENY)


def url_check(url: str, *, resolver: Resolver | None = None) -> None:
    """Raise UrlDenied when the configured policy denies ``url``."""
    denial = url_policy().check(url, resolver=resolver)
    if denial is not None:
        raise UrlDenied(denial)
