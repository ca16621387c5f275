"""Fetch an image from a URL that is treated as hostile.

`fetch_image(url)` returns the bytes of an image that Pillow has decoded, or raises
`FetchError` whose `reason` says why not. What a URL from a dump can make us do is bounded:

* **scheme**: only `http` and `https`; anything else is refused before any DNS or socket.
* **address**: the host is resolved once per hop and *every* address it resolves to is checked
  before any connect; private, loopback, link-local, multicast, reserved, unspecified,
  site-local, shared (100.64.0.0/10), documentation/benchmark ranges, IPv4 addresses embedded
  in IPv6 (mapped, compatible, NAT64, 6to4, Teredo) and cloud metadata addresses are refused
  unless `allow_hosts` names them. The socket connects to the checked address itself (no
  second resolution, so DNS rebinding cannot swap it) and sends the original `Host` header;
  https is wrapped with `server_hostname` so certificates are checked against the name.
* **redirects**: 301/302/303/307/308 are followed by hand, at most `max_redirects` hops,
  each new URL validated exactly like the first before anything is sent to it.
* **size and time**: `Content-Length` over `max_bytes` is refused before the body is read and
  the streaming read stops at the cap; one attempt (DNS, connect, TLS, every hop, the whole
  body) must finish within `timeout` seconds, enforced by a watchdog, not per `recv`.
* **content**: the payload must open as JPEG/PNG/GIF/WebP with at most `max_pixels` pixels,
  judged from the header before anything is decoded (decompression bombs), then load fully.
* **retries**: connection failures, timeouts, 5xx and 429 are retried with exponential
  backoff (`backoff * 2**n`), at most `retries` times; every other failure is final.

Messages and log lines name the host and the reason only, never the path, query or
credentials of a URL (signed URLs carry secrets there).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from PIL import Image

__all__ = ["FetchError", "fetch_image", "IMAGE_FORMATS"]

log = logging.getLogger(__name__)

MiB = 1 << 20
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "zipp-image-fetcher/1"
_OK_STATUSES = frozenset({200, 203})
_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOSTNAME_RE = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$")
# Characters kept as they are when a path or query is percent-encoded (RFC 3986 reserved and
# unreserved, plus '%' so that existing escapes survive); everything else, including spaces,
# controls and non-ASCII, is encoded so the request line can never be split.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"

# Refused on top of what `ipaddress` flags say (is_private & co. changed between 3.11 patch
# releases; this list keeps the policy the same on all of them).
_BLOCKED_NETS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",  # includes 255.255.255.255
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
# Cloud metadata endpoints (AWS/GCP/Azure/OpenStack, ECS, AWS IPv6, Alibaba, Oracle). They are
# inside blocked ranges anyway; they are only let through when `allow_hosts` names the exact
# address (or the hostname), never via a broader CIDR such as 169.254.0.0/16.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPAT = ipaddress.ip_network("::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(Exception):
    """An image could not be fetched; `reason` is a short machine-readable code.

    Reasons: `bad_url`, `scheme`, `dns`, `blocked_address`, `connection`, `tls`, `timeout`,
    `http_status` (`status` holds the code), `bad_redirect`, `too_many_redirects`,
    `bad_response`, `too_large`, `not_an_image`, `decompression_bomb`. `transient` is true for
    the failures that are retried; `attempts` is how many attempts were made.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        host: str | None = None,
        transient: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.host = host
        self.transient = transient
        self.status = status
        self.attempts = 1

    def __reduce__(self):  # keeps reason & co. across pickling (Ray, multiprocessing)
        kwargs = {"host": self.host, "transient": self.transient, "status": self.status}
        return (_rebuild_error, (self.reason, str(self), kwargs, self.attempts))


def _rebuild_error(reason: str, message: str, kwargs: dict, attempts: int) -> FetchError:
    err = FetchError(reason, message, **kwargs)
    err.attempts = attempts
    return err


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # lower-case ASCII (IDNA) name or IP literal without brackets
    port: int
    host_header: str
    request_path: str


@dataclass(frozen=True)
class _Options:
    max_bytes: int
    timeout: float
    max_redirects: int


# ---------------------------------------------------------------------------------------------
# URL and address policy


def _parse(url: str, via: str | None = None) -> _Target:
    """Validate `url` (no network); `via` is the host that redirected to it, for messages."""
    where = f"redirect from {via}: " if via else ""

    def bad(reason: str, what: str, host: str | None = None) -> FetchError:
        return FetchError(reason, f"{where}{what} [{reason}]", host=host)

    if not isinstance(url, str):
        raise bad("bad_url", f"URL must be a string, not {type(url).__name__}")
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        raise bad("bad_url", "malformed URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = scheme[:16] or "(none)"
        raise bad("scheme", f"scheme {shown!r} refused, only http and https are fetched")
    try:
        raw_host = parts.hostname
        port = parts.port
        has_userinfo = parts.username is not None or parts.password is not None
    except ValueError:
        raise bad("bad_url", "malformed host or port") from None
    if not raw_host:
        raise bad("bad_url", "URL has no host")
    if has_userinfo:
        raise bad("bad_url", f"{raw_host}: credentials in URLs are refused", raw_host)
    if port == 0:
        raise bad("bad_url", f"{raw_host}: port 0", raw_host)

    host: str
    try:
        ip = ipaddress.ip_address(raw_host)
    except ValueError:
        ip = None
    if ip is not None:
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            raise bad("bad_url", "IPv6 zone identifiers are refused")
        host = str(ip)
    else:
        if ":" in raw_host or "%" in raw_host:
            raise bad("bad_url", "malformed IP literal")
        try:
            host = raw_host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise bad("bad_url", "host name is not valid IDNA") from None
        if len(host) > 253 or not _HOSTNAME_RE.match(host):
            raise bad("bad_url", "host name has characters that are not allowed")

    default = _DEFAULT_PORTS[scheme]
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port in (None, default) else f"{bracketed}:{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    if parts.query:
        path += "?" + quote(parts.query, safe=_QUERY_SAFE)
    return _Target(url, scheme, host, port or default, host_header, path)


def _is_compat(ip: ipaddress.IPv6Address) -> bool:
    """An IPv4-compatible address (::a.b.c.d, deprecated); :: and ::1 are not."""
    return ip in _V4_COMPAT and int(ip) > 1


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    elif _is_compat(ip) or ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def _why_blocked(ip: IPAddress) -> str | None:
    """The kind of non-public address `ip` is, or None when it is a public one."""
    if ip in _METADATA:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        for v4 in inner:
            why = _why_blocked(v4)
            if why:
                return f"{why} (embedded in IPv6)"
        if ip.ipv4_mapped is not None or _is_compat(ip) or ip in _NAT64:
            # judged by the IPv4 address it stands for (public here), not by its own flags
            return None
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("shared (100.64.0.0/10)", ip in _SHARED),
        ("special-purpose", any(ip in net for net in _BLOCKED_NETS)),
        ("not globally routable", not ip.is_global),
    )
    for name, hit in checks:
        if hit:
            return name
    return None


class _Allow:
    """`allow_hosts`: host names (exact, case-insensitive), IP addresses and CIDRs."""

    def __init__(self, items: Iterable[str] | str | None) -> None:
        self.names: set[str] = set()
        self.nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        if items is None:
            items = ()
        if isinstance(items, str):
            items = (items,)
        for item in items:
            text = str(item).strip()
            if not text:
                continue
            bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
            try:
                self.nets.append(ipaddress.ip_network(bare, strict=False))
                continue
            except ValueError:
                pass
            try:
                name = bare.lower().rstrip(".").encode("idna").decode("ascii")
            except UnicodeError:
                name = ""
            if not name or ":" in name or not _HOSTNAME_RE.match(name):
                raise ValueError(
                    f"allow_hosts: {item!r} is not a host name, IP address or CIDR network"
                )
            self.names.add(name)

    def permits(self, host: str, ip: IPAddress) -> bool:
        if host.rstrip(".") in self.names:
            return True
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            candidates += _embedded_v4(ip)
        metadata = any(c in _METADATA for c in candidates)
        for net in self.nets:
            if metadata and net.num_addresses != 1:
                continue  # a metadata address only when named exactly, never via a range
            if any(c.version == net.version and c in net for c in candidates):
                return True
        return False


# ---------------------------------------------------------------------------------------------
# Network


def _ssl_context() -> ssl.SSLContext:
    """The TLS context for https (system CAs, hostname checking); tests swap it."""
    return ssl.create_default_context()


def _remaining(deadline: float, host: str, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(
            "timeout", f"{host}: timed out {what} [timeout]", host=host, transient=True
        )
    return left


def _getaddrinfo(host: str, port: int, deadline: float) -> list:
    """socket.getaddrinfo bounded by the deadline (it has no timeout of its own)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # a literal: no lookup, no thread
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    box: dict = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="zipp-fetch-dns", daemon=True).start()
    if not done.wait(_remaining(deadline, host, "resolving")):
        raise FetchError(
            "timeout", f"{host}: timed out resolving [timeout]", host=host, transient=True
        )
    if "error" in box:
        raise box["error"]
    return box["infos"]


def _resolve_checked(target: _Target, allow: _Allow, deadline: float, via: str | None) -> list:
    """Resolve the host once and check every address; returns [(family, sockaddr), ...]."""
    host = target.host
    where = f"redirect from {via} to " if via else ""
    try:
        infos = _getaddrinfo(host, target.port, deadline)
    except socket.gaierror as exc:
        transient = exc.errno == socket.EAI_AGAIN
        raise FetchError(
            "dns", f"{where}{host}: name does not resolve [dns]", host=host, transient=transient
        ) from None
    except (UnicodeError, OSError) as exc:
        raise FetchError(
            "dns", f"{where}{host}: lookup failed ({type(exc).__name__}) [dns]", host=host
        ) from None
    addrs: list[tuple[int, tuple]] = []
    seen: set[tuple] = set()
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6) or sockaddr in seen:
            continue
        seen.add(sockaddr)
        addrs.append((family, sockaddr))
    if not addrs:
        raise FetchError("dns", f"{where}{host}: no IPv4 or IPv6 address [dns]", host=host)
    for _family, sockaddr in addrs:
        ip = ipaddress.ip_address(sockaddr[0])
        why = _why_blocked(ip)
        if why and not allow.permits(host, ip):
            shown = host if str(ip) == host else f"{host} resolves to {ip}, which"
            raise FetchError(
                "blocked_address",
                f"{where}{shown} is {why}; refused (not in allow_hosts) [blocked_address]",
                host=host,
            )
    return addrs


class _Watchdog:
    """Shuts the socket down at the deadline, so that no sequence of slow reads outlives it."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.expired = False
        self._sock = sock
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.expired = True
        # the plain socket call, also on an SSLSocket: wakes a blocked recv at once
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _connect(target: _Target, addrs: list, deadline: float) -> socket.socket:
    last: BaseException | None = None
    for family, sockaddr in addrs:
        left = _remaining(deadline, target.host, "connecting")
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(left)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    assert last is not None
    raise last


def _exchange(target: _Target, addrs: list, deadline: float, opts: _Options) -> bytes | str:
    """One request on the checked addresses: the body (status 200) or a redirect Location."""
    host = target.host
    sock: socket.socket | None = None
    dog: _Watchdog | None = None
    resp: http.client.HTTPResponse | None = None
    try:
        sock = _connect(target, addrs, deadline)
        if target.scheme == "https":
            sock = _ssl_context().wrap_socket(
                sock, server_hostname=host, do_handshake_on_connect=False
            )
            dog = _Watchdog(sock, deadline)
            sock.do_handshake()
        else:
            dog = _Watchdog(sock, deadline)
        request = (
            f"GET {target.request_path} HTTP/1.1\r\n"
            f"Host: {target.host_header}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Accept: image/*\r\n"
            "Accept-Encoding: identity\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(request.encode("ascii"))
        resp = http.client.HTTPResponse(sock, method="GET")
        resp.begin()
        status = resp.status
        if status in REDIRECT_STATUSES:
            location = resp.getheader("Location")
            if dog.expired:
                raise TimeoutError
            if not location:
                raise FetchError(
                    "bad_redirect",
                    f"{host}: {status} redirect without a Location header [bad_redirect]",
                    host=host,
                    status=status,
                )
            return location
        if status not in _OK_STATUSES:
            transient = status == 429 or 500 <= status <= 599
            raise FetchError(
                "http_status",
                f"{host}: HTTP {status} [http_status]",
                host=host,
                transient=transient,
                status=status,
            )
        if resp.length is not None and resp.length > opts.max_bytes:
            raise FetchError(
                "too_large",
                f"{host}: Content-Length {resp.length} exceeds {opts.max_bytes} bytes [too_large]",
                host=host,
            )
        chunks: list[bytes] = []
        total = 0
        while True:
            _remaining(deadline, host, "reading the body")
            chunk = resp.read1(min(_CHUNK, opts.max_bytes + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > opts.max_bytes:
                raise FetchError(
                    "too_large",
                    f"{host}: body exceeds {opts.max_bytes} bytes [too_large]",
                    host=host,
                )
            chunks.append(chunk)
        if dog.expired:  # the EOF may be the watchdog's shutdown, not the server's
            raise TimeoutError
        return b"".join(chunks)
    except FetchError:
        raise
    except Exception as exc:
        raise _network_error(exc, host, dog is not None and dog.expired) from None
    finally:
        if dog is not None:
            dog.cancel()
        if resp is not None:
            resp.close()
        if sock is not None:
            sock.close()


def _network_error(exc: BaseException, host: str, expired: bool) -> FetchError:
    name = type(exc).__name__
    if expired or isinstance(exc, TimeoutError):
        return FetchError("timeout", f"{host}: timed out [timeout]", host=host, transient=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return FetchError("tls", f"{host}: certificate verification failed [tls]", host=host)
    if isinstance(exc, ssl.SSLError) and not isinstance(
        exc, ssl.SSLEOFError | ssl.SSLZeroReturnError
    ):
        return FetchError("tls", f"{host}: TLS error ({name}) [tls]", host=host)
    if isinstance(exc, http.client.IncompleteRead):
        return FetchError(
            "connection", f"{host}: body cut short [connection]", host=host, transient=True
        )
    if isinstance(exc, OSError):  # refused, reset, unreachable, RemoteDisconnected, SSL EOF
        return FetchError(
            "connection",
            f"{host}: connection failed ({name}) [connection]",
            host=host,
            transient=True,
        )
    if isinstance(exc, http.client.HTTPException):
        return FetchError(
            "bad_response", f"{host}: malformed HTTP response ({name}) [bad_response]", host=host
        )
    return FetchError("connection", f"{host}: request failed ({name}) [connection]", host=host)


def _attempt(first: _Target, allow: _Allow, opts: _Options) -> tuple[bytes, str]:
    """One attempt: the whole redirect chain within one deadline; (body, final host)."""
    deadline = time.monotonic() + opts.timeout
    target, via, hops = first, None, 0
    while True:
        addrs = _resolve_checked(target, allow, deadline, via)
        outcome = _exchange(target, addrs, deadline, opts)
        if isinstance(outcome, bytes):
            return outcome, target.host
        if hops >= opts.max_redirects:
            raise FetchError(
                "too_many_redirects",
                f"{first.host}: more than {opts.max_redirects} redirects [too_many_redirects]",
                host=first.host,
            )
        hops += 1
        via = target.host
        target = _parse(urljoin(target.url, outcome.strip()), via=via)


# ---------------------------------------------------------------------------------------------
# Content


def _check_image(data: bytes, max_pixels: int, host: str) -> None:
    """Refuse a payload that is not an image, or whose declared size exceeds max_pixels."""

    def bomb(what: str) -> FetchError:
        return FetchError("decompression_bomb", f"{host}: {what} [decompression_bomb]", host=host)

    try:
        # the header check below is the bomb guard (no process-wide warnings filter, which
        # is not thread-safe); Pillow's own DecompressionBombError still counts as one
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
            width, height = im.size  # from the header: nothing is decoded yet
            if width <= 0 or height <= 0:
                raise FetchError(
                    "not_an_image", f"{host}: image has no pixels [not_an_image]", host=host
                )
            if width * height > max_pixels:
                raise bomb(f"{width}x{height} image exceeds {max_pixels} pixels")
            im.load()
    except FetchError:
        raise
    except Image.DecompressionBombError:
        raise bomb("image declares too many pixels") from None
    except Exception as exc:  # UnidentifiedImageError, truncated data, decoder errors
        raise FetchError(
            "not_an_image",
            f"{host}: payload is not a decodable image ({type(exc).__name__}) [not_an_image]",
            host=host,
        ) from None


# ---------------------------------------------------------------------------------------------
# Public


def fetch_image(
    url: str,
    allow_hosts: Iterable[str] = (),
    *,
    max_bytes: int = 20 * MiB,
    timeout: float = 10.0,
    max_redirects: int = 3,
    max_pixels: int = 40_000_000,
    retries: int = 2,
    backoff: float = 0.2,
) -> bytes:
    """GET `url` as an untrusted image and return its bytes, or raise `FetchError`.

    `allow_hosts` lets non-public destinations through: host names (exact, case-insensitive;
    every address the name resolves to is then allowed), IP addresses and CIDR networks
    (`"127.0.0.1"`, `"10.0.0.0/8"`, `"::1"`, `"fd00::/8"`). `timeout` bounds one attempt
    (resolution, connect, TLS, every redirect hop and the whole body); failed attempts that
    are transient are retried `retries` times after `backoff * 2**n` seconds.
    Raises ValueError for invalid arguments (including an unparseable `allow_hosts` item).
    """
    if max_bytes < 0 or timeout <= 0 or max_redirects < 0 or max_pixels <= 0:
        raise ValueError("max_bytes, max_redirects must be >= 0; timeout, max_pixels > 0")
    if retries < 0 or backoff < 0:
        raise ValueError("retries and backoff must be >= 0")
    allow = _Allow(allow_hosts)
    first = _parse(url)  # a refused scheme or malformed URL never reaches the network
    opts = _Options(max_bytes=max_bytes, timeout=float(timeout), max_redirects=max_redirects)
    attempt = 0
    while True:
        attempt += 1
        try:
            data, host = _attempt(first, allow, opts)
            break
        except FetchError as exc:
            exc.attempts = attempt
            if not exc.transient or attempt > retries:
                raise
            delay = backoff * 2 ** (attempt - 1)
            log.info(
                "image fetch from %s failed (%s); retry %d/%d in %.2fs",
                exc.host,
                exc.reason,
                attempt,
                retries,
                delay,
            )
            time.sleep(delay)
    try:
        _check_image(data, max_pixels, host)
    except FetchError as exc:
        exc.attempts = attempt
        raise
    return data
