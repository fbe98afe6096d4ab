"""The SSRF guard: URL syntax checks, the operator's allow-list, and resolve-then-check of hosts."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from urllib.parse import unquote, urlsplit, urlunsplit

import msgspec

from actors.net.errors import DownloadError, UnsafeTarget

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_SCHEMES = frozenset({"http", "https", "ftp"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
MAX_URL_LENGTH = 8192
ALLOW_HINT = "ask the operator to allow it in IMPORTER_ALLOWED_HOSTS"

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_AUTHORITY = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)?//([^/?#]*)")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_METADATA = ipaddress.IPv4Address("169.254.169.254")


class AllowList(msgspec.Struct, frozen=True):
    """Hosts and networks the operator lets through although they are not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """'localhost,10.0.0.0/8,files.internal' -> AllowList; a bad entry raises ValueError."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in re.split(r"[,\s]+", text.strip()):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            if not _HOSTNAME.match(name):
                raise ValueError(
                    f"IMPORTER_ALLOWED_HOSTS entry {entry!r} is neither a host name, "
                    "an IP address nor a network like 10.0.0.0/8"
                )
            hosts.add(name)
        return cls(hosts=frozenset(hosts), networks=tuple(networks))

    def allows_host(self, host: str) -> bool:
        """Whether this host name was allowed by name."""
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, ip: IPAddress) -> bool:
        """Whether this address (or the IPv4 address it embeds) lies in an allowed network."""
        candidates = [ip] if (inner := _embedded_ipv4(ip)) is None else [ip, inner]
        # `in` compares integers without looking at the version, so match versions first.
        return any(
            c.version == net.version and c in net for c in candidates for net in self.networks
        )


class Target(msgspec.Struct, frozen=True):
    """A parsed, syntax-checked URL: what to connect to and what to say in the Host header."""

    url: str
    scheme: str
    host: str  # normalised: lower case, ASCII (IDNA), no brackets, no trailing dot
    port: int
    host_header: str
    path: str
    query: str
    username: str | None
    password: str | None

    @property
    def origin(self) -> tuple[str, str, int]:
        """(scheme, host, port): credentials are only sent within one origin."""
        return (self.scheme, self.host, self.port)

    @property
    def hostport(self) -> str:
        """'host:port' for messages (IPv6 in brackets)."""
        return f"{_bracket(self.host)}:{self.port}"

    @property
    def display(self) -> str:
        """The URL with credentials masked, for messages and logs."""
        return redact(self.url)

    def pinned_url(self, ip: str) -> str:
        """The same URL with the checked address as host, so no second DNS lookup happens."""
        netloc = f"{_bracket(ip.replace('%', '%25'))}:{self.port}"
        return urlunsplit((self.scheme, netloc, self.path, self.query, ""))


# Query parameters that carry secrets in presigned and token URLs (S3's X-Amz-Signature and
# X-Amz-Security-Token, GCS's X-Goog-Signature, Azure SAS's sig, access_token, api_key, ...).
_SECRET_PARAM = re.compile(r"sig|token|key|secret|pass|pwd|auth|credential", re.IGNORECASE)
_QUERY_PAIR = re.compile(r"([^&=#]*)=([^&#]*)")


def redact(url: str) -> str:
    """Mask credentials: 'https://user:pass@host/p?q' -> 'https://user:***@host/p?q', and the values
    of secret-looking query parameters ('?X-Amz-Signature=abc' -> '?X-Amz-Signature=***')."""
    match = _AUTHORITY.match(url)
    if match is not None and "@" in match.group(2):
        userinfo, _, hostport = match.group(2).rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        # A lone user part is often a token (https://TOKEN@host), so it is masked too.
        masked = f"{user}:***" if has_password else "***"
        url = f"{url[: match.start(2)]}{masked}@{hostport}{url[match.end(2) :]}"
    base, mark, rest = url.partition("?")
    if not mark:
        return url
    query, hash_mark, fragment = rest.partition("#")
    query = _QUERY_PAIR.sub(
        lambda m: f"{m.group(1)}=***" if m.group(2) and _SECRET_PARAM.search(m.group(1)) else m.group(0), query
    )
    return f"{base}?{query}{hash_mark}{fragment}"


def check_url_syntax(url: str, *, schemes: frozenset[str] = DEFAULT_SCHEMES) -> None:
    """Cheap check at submission, without DNS: scheme, host, port and characters."""
    parse_target(url, schemes)


def parse_target(url: str, schemes: frozenset[str] = DEFAULT_SCHEMES) -> Target:
    """Check a URL's syntax and split it into a Target; refusals raise UnsafeTarget."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"refused: the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch <= " " or ch == "\x7f" for ch in url):
        raise UnsafeTarget("refused: the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError:
        raise UnsafeTarget(f"refused: {redact(url)} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        shown = scheme or "(none)"
        raise UnsafeTarget(
            f"refused: scheme {shown} is not allowed; use one of {', '.join(sorted(schemes))}"
        )
    if not parts.hostname:
        raise UnsafeTarget(f"refused: {redact(url)} has no host")
    if explicit_port == 0:
        raise UnsafeTarget(f"refused: port 0 in {redact(url)} is not valid")
    host = _normalise_host(parts.hostname)
    username = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    if any(ch in s for s in (username or "", password or "") for ch in "\r\n\0"):
        raise UnsafeTarget("refused: the credentials in the URL contain control characters")
    port = explicit_port or DEFAULT_PORTS.get(scheme, 0)
    default = explicit_port is None or explicit_port == DEFAULT_PORTS.get(scheme)
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        host_header=_bracket(host) if default else f"{_bracket(host)}:{port}",
        path=parts.path or "/",
        query=parts.query,
        username=username,
        password=password,
    )


def check_target(url: str, allow: AllowList, schemes: frozenset[str] = DEFAULT_SCHEMES) -> tuple[Target, list[str]]:
    """The guard's whole verdict on one URL: its syntax, then every address its host resolves to.

    Refusals raise UnsafeTarget; a host that does not resolve raises DownloadError. Run at
    submission (source URIs and callback targets) and again before each connection.
    """
    target = parse_target(url, schemes)
    return target, resolve_checked(target.host, target.port, allow)


def resolve_checked(host: str, port: int, allow: AllowList) -> list[str]:
    """Resolve a host and return its IPs; refuse if any of them is not public and not allowed."""
    name = _normalise_host(host.strip("[]"))
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(name)]
        literal = True
    except ValueError:
        addresses = _lookup(name, port)
        literal = False
    host_allowed = allow.allows_host(name)
    for ip in addresses:
        reason = unsafe_reason(ip)
        if reason is None or host_allowed or allow.allows_address(ip):
            continue
        if literal:
            raise UnsafeTarget(f"refused: address {ip} is {reason}; {ALLOW_HINT}")
        # What an internal name resolves to is the operator's business, not the caller's.
        log.warning("refused host %s: it resolves to %s (%s)", name, ip, reason)
        raise UnsafeTarget(f"refused: host {name} resolves to a non-public address; {ALLOW_HINT}")
    return [str(ip) for ip in addresses]


def unsafe_reason(ip: IPAddress) -> str | None:
    """Why an address must not be reached from here ('loopback', 'private', ...), or None."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = unsafe_reason(inner)
        return None if reason is None else f"{reason}, embedded in an IPv6 address"
    if ip == _METADATA:
        return "link-local, the cloud metadata address"
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "carrier-grade NAT"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        # Catches the rest of the special-purpose registry (documentation, benchmarking...).
        (not ip.is_global, "not publicly routable"),
    )
    return next((reason for hit, reason in checks if hit), None)


def _lookup(name: str, port: int) -> list[IPAddress]:
    """getaddrinfo, deduplicated in the resolver's order; failures become DownloadError."""
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        # EAI_AGAIN is a resolver hiccup worth retrying; anything else (NXDOMAIN...) is not.
        transient = exc.errno == socket.EAI_AGAIN
        raise DownloadError(f"cannot resolve host {name}", transient=transient) from None
    except (UnicodeError, OSError):
        raise DownloadError(f"cannot resolve host {name}", transient=False) from None
    seen: dict[IPAddress, None] = {}
    for *_, sockaddr in infos:
        seen.setdefault(ipaddress.ip_address(str(sockaddr[0])), None)
    if not seen:
        raise DownloadError(f"cannot resolve host {name}", transient=False)
    return list(seen)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address, if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _normalise_host(host: str) -> str:
    """Lower-case, strip the root dot, IDNA-encode; refuse what is neither a name nor an IP."""
    name = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeTarget(f"refused: {host!r} is not a valid host name") from None
    if not _HOSTNAME.match(name):
        raise UnsafeTarget(f"refused: {host!r} is not a valid host name")
    return name


def _bracket(host: str) -> str:
    """IPv6 literals go in brackets inside URLs and Host headers."""
    return f"[{host}]" if ":" in host else host
