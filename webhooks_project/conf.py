"""Parsing of the service's environment variables.

Every tunable is read from the environment once, at start-up. A value that
does not parse raises ImproperlyConfigured naming the variable, so a typo in a
deployment fails the release instead of silently running on a default.
"""

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024 * 1024}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_duration(text: str) -> timedelta:
    """`100ms`, `10s`, `5m`, `24h`, `30d` -> timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 100ms, 10s, 5m, 24h, 30d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_positive_duration(text: str) -> timedelta:
    """A duration longer than 0."""
    duration = parse_duration(text)
    if duration <= timedelta(0):
        raise ValueError(f"{text!r} must be longer than 0")
    return duration


def parse_schedule(text: str) -> tuple[timedelta, ...]:
    """A comma list of durations; the last one repeats. At least one entry."""
    delays = tuple(parse_duration(part) for part in text.split(",") if part.strip())
    if not delays:
        raise ValueError("the schedule needs at least one duration")
    return delays


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|m)\s*$")
_RATE_PERIODS = {"s": timedelta(seconds=1), "m": timedelta(minutes=1)}
# A rate limit's bounds: at least one request a minute, at most 1000 a second
# (above, a limit is no protection worth a Redis round trip per request).
RATE_MAX_PER_SECOND = 1000


@dataclass(frozen=True)
class Rate:
    """`10/s`: at most `count` requests per `period`, evenly spaced."""

    count: int
    period: timedelta

    @property
    def interval(self) -> timedelta:
        """The time between two requests."""
        return self.period / self.count

    def __str__(self) -> str:
        return f"{self.count}/{'s' if self.period.total_seconds() == 1 else 'm'}"


def parse_rate(text: str) -> Rate:
    """`10/s` or `600/m` -> Rate, between 1/m and 1000/s; ValueError otherwise."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a rate such as 10/s or 600/m")
    rate = Rate(int(match.group(1)), _RATE_PERIODS[match.group(2)])
    per_second = rate.count / rate.period.total_seconds()
    if rate.count < 1 or per_second > RATE_MAX_PER_SECOND:
        raise ValueError(f"{text!r}: between 1/m and {RATE_MAX_PER_SECOND}/s")
    return rate


def parse_optional_rate(text: str) -> Rate | None:
    """parse_rate, or None (off) for an empty value."""
    return parse_rate(text) if text.strip() else None


def parse_fraction(text: str) -> float:
    """`10%` or `0.1` -> 0.1, within [0, 1]."""
    value = text.strip()
    number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    if not 0 <= number <= 1:
        raise ValueError(f"{text!r} is not between 0% and 100%")
    return number


def parse_size(text: str) -> int:
    """`262144`, `256KiB`, `1MiB` -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size such as 262144, 256KiB or 1MiB")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def parse_positive_int(text: str) -> int:
    number = int(text.strip())
    if number < 1:
        raise ValueError(f"{text!r} must be at least 1")
    return number


def parse_seconds(text: str) -> int:
    """A whole number of seconds, at least 0 (Django's *_SECONDS settings)."""
    number = int(text.strip())
    if number < 0:
        raise ValueError(f"{text!r} must be at least 0")
    return number


def parse_proxy_ssl_header(text: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto,https` (or Django's `HTTP_X_FORWARDED_PROTO,https`)
    -> ("HTTP_X_FORWARDED_PROTO", "https"), Django's SECURE_PROXY_SSL_HEADER;
    empty -> None (no header is trusted)."""
    if not text.strip():
        return None
    header, sep, value = (part.strip() for part in text.partition(","))
    if not sep or not header or not value:
        raise ValueError(
            f"{text!r} is not a header and its value, e.g. X-Forwarded-Proto,https"
        )
    name = header.upper().replace("-", "_")
    if not name.startswith("HTTP_"):
        name = f"HTTP_{name}"
    return name, value


AddressAllowance = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]


def parse_address_allowlist(text: str) -> tuple[AddressAllowance, ...]:
    """A comma list of CIDRs (`10.2.0.0/16`, `127.0.0.1`: any port) and
    address:port pairs (`127.0.0.1:9000`, `[::1]:9000`: that port only) ->
    (network, port or None) pairs. IP addresses only: a host name would be
    resolved once here and could point elsewhere later."""
    allowed: list[AddressAllowance] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        port: int | None = None
        address = entry
        if entry.startswith("["):
            address, _, rest = entry[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"{entry!r} is not [address]:port")
                port = int(rest[1:])
        elif entry.count(":") == 1:
            address, _, port_text = entry.partition(":")
            port = int(port_text)
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"{entry!r}: no such port")
        allowed.append((ipaddress.ip_network(address, strict=True), port))
    return tuple(allowed)


def parse_networks(
    text: str,
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma list of CIDRs or single addresses (`10.0.5.0/24,::1`) ->
    networks. IP addresses only, host bits must be zero (`10.0.5.1/24` is
    refused: it is probably a typo for a narrower range)."""
    return tuple(
        ipaddress.ip_network(entry, strict=True)
        for entry in (part.strip() for part in text.split(","))
        if entry
    )


# A CSP host-source with a scheme (https://app.example.com, https://*.example.com:8443).
_FRAME_SOURCE = re.compile(
    r"^https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:(\d{1,5}|\*))?$"
)


def parse_frame_ancestors(text: str) -> tuple[str, ...]:
    """Space- or comma-separated origins that may frame the portal
    (`https://app.example.com 'self'`) -> CSP frame-ancestors sources;
    empty -> () (none may). Only origins with a scheme and 'self': anything
    else could widen or break the policy (`*`, `;`, a path)."""
    sources = tuple(part for part in re.split(r"[\s,]+", text.strip()) if part)
    for source in sources:
        if source != "'self'" and not _FRAME_SOURCE.match(source):
            raise ValueError(
                f"{source!r} is not an origin such as https://app.example.com or 'self'"
            )
    return sources


@dataclass(frozen=True)
class EgressProxy:
    """An HTTP proxy that outbound requests tunnel through (CONNECT)."""

    host: str
    port: int
    # The Proxy-Authorization header value (Basic), from the URL's user info.
    authorization: str | None = field(default=None, repr=False)


def parse_egress_proxy(text: str) -> EgressProxy | None:
    """`http://[user:password@]host:port` -> EgressProxy; empty -> None. Only
    http: the tunnel to the proxy is plain, what goes through it is not."""
    text = text.strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme != "http":
        raise ValueError("the proxy must be an http:// URL (it is sent CONNECT)")
    if not parts.hostname or parts.port is None:
        raise ValueError("the proxy URL needs a host and a port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("the proxy URL has no path, query or fragment")
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
    return EgressProxy(parts.hostname, parts.port, authorization)


NoProxyEntry = str | ipaddress.IPv4Network | ipaddress.IPv6Network
_HOST_NAME = re.compile(
    r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$"
)


def parse_no_proxy(text: str) -> tuple[NoProxyEntry, ...]:
    """A comma list of hosts that bypass the egress proxy: host names (also
    matching their subdomains; a leading dot is ignored), IP addresses or
    CIDRs (matching destinations given as an address), or `*` (all)."""
    entries: list[NoProxyEntry] = []
    for entry in (part.strip().lower() for part in text.split(",")):
        if not entry:
            continue
        try:
            entries.append(ipaddress.ip_network(entry.strip("[]"), strict=True))
            continue
        except ValueError:
            pass
        name = entry.lstrip(".").rstrip(".")
        if entry != "*" and not _HOST_NAME.match(name):
            raise ValueError(f"{entry!r} is not a host name, address or CIDR")
        entries.append(name if entry != "*" else "*")
    return tuple(entries)


def read(
    environ: Mapping[str, str],
    name: str,
    default: str,
    parser,
    *,
    secret: bool = False,
):
    """Parse environ[name] (or the default), naming the variable on error
    (and quoting its value, unless it may hold a secret)."""
    raw = environ.get(name, default)
    try:
        return parser(raw)
    except (ValueError, TypeError) as exc:
        shown = name if secret else f"{name}={raw!r}"
        raise ImproperlyConfigured(f"{shown}: {exc}") from None


# settings.py's SECRET_KEY default: only DEBUG=true accepts it.
DEV_SECRET_KEY = "dev-insecure-change-me"


def production_problem(
    *, secret_key: str, encryption_keys: list[str], allowed_hosts: list[str]
) -> str | None:
    """With DEBUG off, what stops the service from starting, in one line naming
    the variables; None when it may start. Every process (web, worker, beat,
    migrate) imports the settings, so all of them refuse alike."""
    missing = []
    if not secret_key or secret_key == DEV_SECRET_KEY:
        missing.append("SECRET_KEY (a long random string)")
    if not [key for key in encryption_keys if key.strip()]:
        missing.append("WEBHOOK_ENCRYPTION_KEYS (Fernet keys, newest first)")
    if not [host for host in allowed_hosts if host.strip()]:
        missing.append("ALLOWED_HOSTS (the host names the web process answers to)")
    if not missing:
        return None
    return (
        f"DEBUG is off (production) and {', '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not set; set "
        f"{'it' if len(missing) == 1 else 'them'} (docs/deploy.md, "
        '"Production settings"), or DEBUG=true for local development'
    )
