"""fetch_image against a real local HTTP server: address policy, redirects, limits, retries.

Every socket connect made during a test is recorded and any connect to a non-loopback
address fails the test (the `net` fixture), so "refused before any connect" is checked
directly and no test ever sends traffic off this machine. Name lookups go through the same
fixture, which can also answer for made-up host names.
"""

from __future__ import annotations

import io
import ipaddress
import pickle
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from PIL import Image

from media import fetch as images
from media.fetch import FetchError, fetch_image

LOCAL = ("127.0.0.1",)


def make_png(width: int = 64, height: int = 48) -> bytes:
    img = Image.new("RGB", (width, height))
    img.putdata([((x * 4) % 256, (y * 5) % 256, 128) for y in range(height) for x in range(width)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A ~100-byte PNG whose IHDR (valid CRC) declares width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


PNG = make_png()


class Handler(BaseHTTPRequestHandler):
    """Routes (the path decides, the query carries arguments):

    /img.png  /host (records the Host header)  /secret (must never be reached)
    /to?u=URL&s=CODE  redirect to URL        /r/N  chain of N redirects to /img.png
    /loop/N  endless redirects               /flaky/KEY/K  K times 503, then the PNG
    /status/CODE  bare status                /big  /big-stream  /huge-declared
    /text  /truncated  /slow/SECONDS  /drip  /drip-headers  /bomb/WxH
    """

    def log_message(self, *args) -> None:  # quiet
        pass

    def send(self, code: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        srv = self.server
        with srv.lock:
            srv.hits[path] += 1
            count = srv.hits[path]
        seg = path.strip("/").split("/")
        try:
            if path == "/img.png":
                self.send(200, PNG, {"Content-Type": "image/png"})
            elif path == "/host":
                srv.hosts.append(self.headers.get("Host"))
                self.send(200, PNG)
            elif path == "/secret":
                self.send(200, b"secret")
            elif path == "/to":
                code = int(query.get("s", ["302"])[0])
                self.send(code, headers={"Location": query["u"][0]})
            elif seg[0] == "r":
                n = int(seg[1])
                codes = (301, 302, 303, 307, 308)
                loc = "../img.png" if n == 1 else f"/r/{n - 1}"
                self.send(codes[n % 5], headers={"Location": loc})
            elif seg[0] == "loop":
                self.send(302, headers={"Location": f"/loop/{int(seg[1]) + 1}"})
            elif seg[0] == "flaky":
                if count <= int(seg[2]):
                    self.send(503, b"busy")
                else:
                    self.send(200, PNG)
            elif seg[0] == "status":
                self.send(int(seg[1]), b"status")
            elif path == "/big":
                self.send(200, b"x" * 5000)
            elif path == "/big-stream":  # HTTP/1.0, no Content-Length: ends at close
                self.send_response(200)
                self.end_headers()
                for _ in range(5):
                    self.wfile.write(b"x" * 1000)
            elif path == "/huge-declared":
                self.send_response(200)
                self.send_header("Content-Length", str(10**10))
                self.end_headers()
                self.wfile.flush()
                time.sleep(3)
            elif path == "/text":
                self.send(200, b"<html>not an image</html>", {"Content-Type": "image/png"})
            elif path == "/truncated":
                self.send(200, PNG[: len(PNG) // 2])
            elif seg[0] == "slow":
                time.sleep(float(seg[1]))
                self.send(200, PNG)
            elif path == "/drip":  # every read is quick, the whole body is not
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            elif path == "/drip-headers":  # the same inside one header line
                self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
                self.wfile.write(b"\r\n\r\n")
            elif seg[0] == "bomb":
                w, h = (int(v) for v in seg[1].split("x"))
                self.send(200, png_bomb(w, h))
            else:
                self.send(404, b"no")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, handler=Handler) -> None:
        super().__init__(addr, handler)
        self.hits: Counter = Counter()
        self.hosts: list = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def reset(self) -> None:
        self.hits.clear()
        self.hosts.clear()


class Server6(Server):
    address_family = socket.AF_INET6


def serve(server: Server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture(scope="module")
def _server():
    server = serve(Server(("127.0.0.1", 0)))
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def srv(_server):
    _server.reset()
    return _server


class Net:
    def __init__(self) -> None:
        self.connects: list[tuple] = []
        self.lookups: list[str] = []
        self.dns: dict = {}


class OffMachine(Exception):
    """Raised instead of connecting anywhere but loopback (not an OSError on purpose)."""


@pytest.fixture(autouse=True)
def net(monkeypatch):
    """Record every connect and lookup; refuse non-loopback connects; fake DNS names."""
    state = Net()
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(sock, address):
        state.connects.append(tuple(address[:2]))
        ip = ipaddress.ip_address(address[0].split("%")[0])
        v4 = getattr(ip, "ipv4_mapped", None)
        if not (ip.is_loopback or (v4 is not None and v4.is_loopback)):
            raise OffMachine(f"test tried to connect to {address[0]}")
        return real_connect(sock, address)

    def getaddrinfo(host, port, *args, **kwargs):
        state.lookups.append(host)
        if host in state.dns:
            answer = state.dns[host]
            if isinstance(answer, BaseException):
                raise answer
            out = []
            for a in answer:
                if ":" in a:
                    out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)))
                else:
                    out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)))
            return out
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return state


def refused(url: str, reason: str, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch_image(url, **kwargs)
    assert info.value.reason == reason, str(info.value)
    return info.value


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------------------------------
# the happy path


def test_fetches_png_from_allowlisted_loopback(srv, net):
    data = fetch_image(f"http://127.0.0.1:{srv.port}/img.png", allow_hosts=LOCAL)
    assert data == PNG
    assert srv.hits["/img.png"] == 1
    assert net.connects == [("127.0.0.1", srv.port)]


@pytest.mark.parametrize("allow", [("127.0.0.0/8",), ["10.0.0.0/8", "127.0.0.1/32"], "127.0.0.1"])
def test_cidr_and_single_address_allowlists(srv, allow):
    assert fetch_image(f"http://127.0.0.1:{srv.port}/img.png", allow_hosts=allow) == PNG


def test_connects_to_the_checked_address_and_sends_the_original_host(srv, net):
    net.dns["images.test"] = ["127.0.0.1"]
    data = fetch_image(f"http://IMAGES.test:{srv.port}/host", allow_hosts=LOCAL)
    assert data == PNG
    assert srv.hosts == [f"images.test:{srv.port}"]
    assert net.lookups == ["images.test"]  # resolved once, never re-resolved to connect
    assert net.connects == [("127.0.0.1", srv.port)]


def test_hostname_allowlist_is_exact_and_case_insensitive(srv, net):
    net.dns["cdn.test"] = ["127.0.0.1"]
    net.dns["evil.cdn.test"] = ["127.0.0.1"]
    assert fetch_image(f"http://cdn.test:{srv.port}/img.png", allow_hosts=("CDN.Test",)) == PNG
    refused(
        f"http://evil.cdn.test:{srv.port}/img.png", "blocked_address", allow_hosts=("cdn.test",)
    )
    assert srv.hits["/img.png"] == 1


def test_redirect_chain_with_relative_locations(srv):
    assert fetch_image(f"http://127.0.0.1:{srv.port}/r/3", LOCAL, max_redirects=3) == PNG
    assert [srv.hits[p] for p in ("/r/3", "/r/2", "/r/1", "/img.png")] == [1, 1, 1, 1]


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_every_redirect_status_is_followed(srv, code):
    target = quote(f"http://127.0.0.1:{srv.port}/img.png", safe="")
    assert fetch_image(f"http://127.0.0.1:{srv.port}/to?s={code}&u={target}", LOCAL) == PNG


# ------------------------------------------------------------------------------------------
# address policy


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.2",
        "127.1",  # shorthand and decimal spellings resolve to loopback too
        "2130706433",
        "localhost",
        "LOCALHOST",
        "0.0.0.0",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::]",
    ],
)
def test_loopback_refused_without_a_request(srv, net, host):
    err = refused(f"http://{host}:{srv.port}/img.png?token=s3cret", "blocked_address")
    assert net.connects == []
    assert sum(srv.hits.values()) == 0
    assert "s3cret" not in str(err) and "img.png" not in str(err)
    assert "blocked_address" in str(err)


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "169.254.169.254",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "[fe80::1]",
        "[fd00:ec2::254]",
        "[fec0::1]",
        "[ff02::1]",
        "[::ffff:10.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[64:ff9b::a00:1]",
        "[2002:a00:1::1]",
    ],
)
def test_private_and_metadata_addresses_refused_before_any_connect(net, host):
    start = time.monotonic()
    err = refused(f"http://{host}/latest/meta-data/", "blocked_address", timeout=5)
    assert time.monotonic() - start < 0.5
    assert net.connects == []
    assert err.host == host.strip("[]") or err.host == str(ipaddress.ip_address(host.strip("[]")))


def test_every_resolved_address_is_checked(net):
    net.dns["mixed.test"] = ["93.184.216.34", "10.0.0.1"]
    err = refused("http://mixed.test/a.png", "blocked_address")
    assert "mixed.test resolves to 10.0.0.1" in str(err)
    assert net.connects == []


def test_metadata_address_needs_an_exact_allowlist_entry(net):
    allow = ("169.254.0.0/16", "0.0.0.0/0", "::/0")
    refused("http://169.254.169.254/latest/", "blocked_address", allow_hosts=allow)
    refused("http://[::ffff:169.254.169.254]/latest/", "blocked_address", allow_hosts=allow)
    assert net.connects == []


def test_ipv6_allowlist_items_parse(srv, net):
    port = closed_port()
    for allow in (("::1",), ("[::1]",), ("::1/128",), ("::/0", "fd00::/8", "2001:db8::1")):
        # past the address check: the connect to [::1] itself fails (nothing listens there)
        err = refused(f"http://[::1]:{port}/img.png", "connection", allow_hosts=allow, retries=0)
        assert err.transient
    assert all(c[0] == "::1" for c in net.connects)
    # the IPv4 entry also covers its IPv4-mapped IPv6 spelling
    refused(f"http://[::ffff:127.0.0.1]:{port}/x", "connection", allow_hosts=LOCAL, retries=0)
    with pytest.raises(ValueError, match="allow_hosts"):
        fetch_image("http://example.test/", allow_hosts=("not a host!",))


def test_ipv6_loopback_server_when_available():
    try:
        server = serve(Server6(("::1", 0)))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        url = f"http://[::1]:{server.port}/img.png"
        refused(url, "blocked_address")
        assert server.hits["/img.png"] == 0
        assert fetch_image(url, allow_hosts=("::1/128",)) == PNG
        assert server.hits["/img.png"] == 1
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://localhost:{port}/secret",
        "http://[::1]:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://10.0.0.1:{port}/secret",
        "http://169.254.169.254/latest/meta-data/iam/",
        "//10.0.0.1/secret",  # scheme-relative
    ],
)
def test_redirect_into_blocked_address_is_refused_before_the_request(srv, net, target):
    net.dns["images.test"] = ["127.0.0.1"]  # the allowlisted server, by name
    location = quote(target.format(port=srv.port), safe="")
    url = f"http://images.test:{srv.port}/to?u={location}"
    err = refused(url, "blocked_address", allow_hosts=("images.test",))
    assert "redirect from images.test" in str(err)
    assert srv.hits["/to"] == 1 and srv.hits["/secret"] == 0
    assert net.connects == [("127.0.0.1", srv.port)]  # the first hop only


def test_redirect_into_allowlisted_address_is_followed(srv, net):
    net.dns["images.test"] = ["127.0.0.1"]
    location = quote(f"http://127.0.0.1:{srv.port}/img.png", safe="")
    url = f"http://images.test:{srv.port}/to?u={location}"
    assert fetch_image(url, allow_hosts=("images.test", "127.0.0.0/8")) == PNG


def test_each_hop_is_resolved_and_checked_again(srv, net):
    """A name that rebinds to a private address between hops is caught on the second hop."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])

    class Rebinding(dict):
        def __contains__(self, host):
            return host == "rebind.test"

        def __getitem__(self, host):
            return next(answers)

    net.dns = Rebinding()
    location = quote(f"http://rebind.test:{srv.port}/img.png", safe="")
    refused(f"http://rebind.test:{srv.port}/to?u={location}", "blocked_address", allow_hosts=LOCAL)
    assert srv.hits["/to"] == 1 and srv.hits["/img.png"] == 0
    assert net.connects == [("127.0.0.1", srv.port)]


# ------------------------------------------------------------------------------------------
# scheme and URL


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/img.png",
        "gopher://127.0.0.1:70/_GET%20/",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
        "//127.0.0.1/img.png",
        "127.0.0.1/img.png",
    ],
)
def test_other_schemes_refused_before_any_network(net, url):
    refused(url, "scheme", allow_hosts=LOCAL)
    assert net.lookups == [] and net.connects == []


def test_redirect_to_other_scheme_refused(srv, net):
    url = f"http://127.0.0.1:{srv.port}/to?u=" + quote("file:///etc/passwd", safe="")
    err = refused(url, "scheme", allow_hosts=LOCAL)
    assert "redirect from 127.0.0.1" in str(err)
    assert len(net.connects) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://",
        "http://host:99999/",
        "http://exa mple.test/",
        "http://[::1/",
        "http://a\x00b/",
        "http://[fe80::1%25eth0]/",
    ],
)
def test_malformed_urls_refused(net, url):
    refused(url, "bad_url")
    assert net.connects == []


def test_credentials_in_url_refused_and_not_echoed(net):
    err = refused("http://alice:hunter2@127.0.0.1/img.png", "bad_url", allow_hosts=LOCAL)
    assert "hunter2" not in str(err) and "alice" not in str(err)
    assert net.connects == []


def test_error_survives_pickling(net):
    err = refused("http://10.0.0.1/a.png", "blocked_address")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.reason, copy.host, copy.transient, str(copy)) == (
        "blocked_address",
        "10.0.0.1",
        False,
        str(err),
    )


def test_dns_failure_is_not_retried(net):
    net.dns["nowhere.test"] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    refused("http://nowhere.test/a.png", "dns", retries=2, backoff=0)
    assert net.lookups == ["nowhere.test"]


# ------------------------------------------------------------------------------------------
# retries


def test_transient_5xx_is_retried(srv):
    start = time.monotonic()
    url = f"http://127.0.0.1:{srv.port}/flaky/a/2"
    assert fetch_image(url, LOCAL, retries=2, backoff=0.05) == PNG
    assert srv.hits["/flaky/a/2"] == 3
    assert time.monotonic() - start >= 0.05 + 0.1  # backoff doubles


def test_too_few_retries_give_up(srv):
    err = refused(
        f"http://127.0.0.1:{srv.port}/flaky/b/2",
        "http_status",
        allow_hosts=LOCAL,
        retries=1,
        backoff=0.01,
    )
    assert err.status == 503 and err.transient and err.attempts == 2
    assert srv.hits["/flaky/b/2"] == 2


def test_429_is_retried_404_is_not(srv):
    err = refused(
        f"http://127.0.0.1:{srv.port}/status/429",
        "http_status",
        allow_hosts=LOCAL,
        retries=1,
        backoff=0.01,
    )
    assert srv.hits["/status/429"] == 2 and err.status == 429
    err = refused(
        f"http://127.0.0.1:{srv.port}/status/404",
        "http_status",
        allow_hosts=LOCAL,
        retries=2,
        backoff=0.01,
    )
    assert err.status == 404 and not err.transient and err.attempts == 1
    assert srv.hits["/status/404"] == 1


def test_connection_refused_is_retried(net):
    port = closed_port()
    err = refused(
        f"http://127.0.0.1:{port}/img.png", "connection", allow_hosts=LOCAL, retries=2, backoff=0.01
    )
    assert err.attempts == 3
    assert net.connects == [("127.0.0.1", port)] * 3


def test_refusals_are_not_retried(srv, net):
    refused(f"http://127.0.0.1:{srv.port}/img.png", "blocked_address", retries=3, backoff=1)
    refused(f"http://127.0.0.1:{srv.port}/text", "not_an_image", allow_hosts=LOCAL, retries=3)
    assert srv.hits["/text"] == 1


# ------------------------------------------------------------------------------------------
# limits


def test_too_many_redirects(srv):
    err = refused(
        f"http://127.0.0.1:{srv.port}/loop/0",
        "too_many_redirects",
        allow_hosts=LOCAL,
        max_redirects=3,
        retries=2,
    )
    assert [srv.hits[f"/loop/{i}"] for i in range(5)] == [1, 1, 1, 1, 0]
    assert err.attempts == 1
    refused(
        f"http://127.0.0.1:{srv.port}/r/3", "too_many_redirects", allow_hosts=LOCAL, max_redirects=2
    )
    refused(
        f"http://127.0.0.1:{srv.port}/r/1", "too_many_redirects", allow_hosts=LOCAL, max_redirects=0
    )


def test_redirect_without_location(srv):
    refused(f"http://127.0.0.1:{srv.port}/status/302", "bad_redirect", allow_hosts=LOCAL)


@pytest.mark.parametrize("path", ["/big", "/big-stream"])
def test_too_large(srv, path):
    url = f"http://127.0.0.1:{srv.port}{path}"
    refused(url, "too_large", allow_hosts=LOCAL, max_bytes=1000)
    # under a big enough cap the same body is read in full (and then is not an image)
    refused(url, "not_an_image", allow_hosts=LOCAL, max_bytes=5000)


def test_declared_length_over_the_cap_is_refused_up_front(srv):
    start = time.monotonic()
    refused(f"http://127.0.0.1:{srv.port}/huge-declared", "too_large", allow_hosts=LOCAL, timeout=5)
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("path", ["/text", "/truncated", "/status/200"])
def test_not_an_image(srv, path):
    err = refused(f"http://127.0.0.1:{srv.port}{path}", "not_an_image", allow_hosts=LOCAL)
    assert not err.transient


def test_slow_response_times_out(srv):
    start = time.monotonic()
    refused(
        f"http://127.0.0.1:{srv.port}/slow/2", "timeout", allow_hosts=LOCAL, timeout=0.3, retries=0
    )
    assert time.monotonic() - start < 1


def test_timeout_bounds_the_whole_body_not_each_read(srv):
    start = time.monotonic()
    err = refused(
        f"http://127.0.0.1:{srv.port}/drip",
        "timeout",
        allow_hosts=LOCAL,
        timeout=0.4,
        retries=1,
        backoff=0.01,
    )
    assert err.transient and err.attempts == 2
    assert srv.hits["/drip"] == 2
    assert time.monotonic() - start < 1.5


def test_timeout_bounds_slow_headers(srv):
    start = time.monotonic()
    refused(
        f"http://127.0.0.1:{srv.port}/drip-headers",
        "timeout",
        allow_hosts=LOCAL,
        timeout=0.4,
        retries=0,
    )
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("size", [(100_000, 100_000), (10_000, 10_000), (8_000, 8_000)])
def test_decompression_bomb_refused_without_decoding(srv, size):
    w, h = size
    start = time.monotonic()
    refused(f"http://127.0.0.1:{srv.port}/bomb/{w}x{h}", "decompression_bomb", allow_hosts=LOCAL)
    assert time.monotonic() - start < 1


def test_pixel_limit_is_the_callers(srv):
    url = f"http://127.0.0.1:{srv.port}/img.png"
    refused(url, "decompression_bomb", allow_hosts=LOCAL, max_pixels=64 * 48 - 1)
    assert fetch_image(url, LOCAL, max_pixels=64 * 48) == PNG


# ------------------------------------------------------------------------------------------
# https


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "2",
                "-subj",
                "/CN=images.test",
                "-addext",
                "subjectAltName=DNS:images.test",
            ],
            check=True,
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        pytest.skip("openssl is not available to make a test certificate")
    server = Server(("127.0.0.1", 0))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    serve(server)
    yield server, cert
    server.shutdown()
    server.server_close()


def test_https_checks_the_certificate_against_the_url_host(tls_server, net, monkeypatch):
    server, cert = tls_server
    monkeypatch.setattr(images, "_ssl_context", lambda: ssl.create_default_context(cafile=cert))
    net.dns["images.test"] = ["127.0.0.1"]
    net.dns["other.test"] = ["127.0.0.1"]
    url = f"https://images.test:{server.port}/host"
    assert fetch_image(url, allow_hosts=LOCAL) == PNG
    assert server.hosts[-1] == f"images.test:{server.port}"
    # the same server under another name: the certificate does not match, refused, no retry
    err = refused(f"https://other.test:{server.port}/img.png", "tls", allow_hosts=LOCAL, retries=2)
    assert err.attempts == 1


def test_https_to_a_plain_http_port_is_a_tls_error(srv):
    refused(f"https://127.0.0.1:{srv.port}/img.png", "tls", allow_hosts=LOCAL)
