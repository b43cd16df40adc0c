"""A small HTTP/1.1 client for reading the Hub: the standard library only,
kept-alive connections, exact byte ranges.

Why not huggingface_hub's client: importing it (httpx2 and the Hub API) costs
more than the whole inspection of most repos, and a header read through it
stopped mid-body, which dropped the connection, so every shard opened a new
one (191 TLS handshakes for a 405B model). Here:

- at most `max_connections` connections are open at any time (all hosts
  together: the Hub and its CDN), and each is reused (keep-alive);
- a body is read to its end whenever it is what was asked for (a Range
  answered with 206 and its Content-Length), so the connection goes back to
  the pool; only a server that ignores Range and sends a whole file has its
  connection closed after the bytes we need;
- redirects are followed (at most 5) and remembered per URL: a second range
  of the same file goes straight to the CDN address, one round trip instead
  of two. A remembered address that no longer answers (a signed URL that
  expired) is forgotten and the original URL asked again;
- proxies from HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured (CONNECT
  tunnels for https).

Errors: HubHTTPError (an answer of 400 or more, with its status, headers and
a small body), HubTimeout, HubTransportError (connection refused, reset,
closed mid-answer). hub.py turns them into SourceError codes and retries the
transient ones.
"""
from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

MAX_REDIRECTS = 5
#: an error body larger than this is not read (its message is not worth the bytes)
MAX_ERROR_BODY = 1_000_000
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def ssl_context() -> ssl.SSLContext:
    """One verifying context per process (loading the CA store costs ~10 ms)."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = ssl.create_default_context()
        return _ssl_context


class HubTransportError(Exception):
    """No answer: connection refused, reset, closed mid-answer, a protocol error."""


class HubTimeout(HubTransportError):
    """No byte within the timeout."""


class HubHTTPError(Exception):
    def __init__(self, status: int, headers: dict[str, str], body: bytes, url: str):
        super().__init__(f"HTTP {status} for {url}")
        self.status, self.headers, self.body, self.url = status, headers, body, url


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    url: str  # after redirects
    redirects: int
    received: int  # body bytes that came over the wire (more than body when a server ignored Range)


_Key = tuple[str, str, int]  # scheme, host, port


class HubClient:
    """Connections to the Hub (and wherever it redirects), shared by the
    threads of one inspection."""

    def __init__(self, *, timeout: float, max_connections: int = 8, user_agent: str = "cfm-inspect"):
        self.timeout = timeout
        self.max_connections = max_connections
        self.user_agent = user_agent
        self._cond = threading.Condition()
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._open = 0
        self._closed = False
        self._located: dict[str, str] = {}  # URL -> where it redirected (same file)
        #: connections opened so far (each a TCP, for https a TLS, handshake)
        self.opened = 0

    # -- connections ------------------------------------------------------------------------------------------
    def _acquire(self, key: _Key) -> tuple[http.client.HTTPConnection, bool]:
        """(connection, reused) for key, waiting while max_connections are busy."""
        with self._cond:
            while True:
                if self._closed:
                    raise HubTransportError("the client is closed")
                idle = self._idle.get(key)
                if idle:
                    return idle.pop(), True
                if self._open < self.max_connections:
                    self._open += 1
                    self.opened += 1
                    break
                other = next((conns for conns in self._idle.values() if conns), None)
                if other is not None:  # an idle connection to another host makes room
                    other.pop().close()
                    self._open -= 1
                    continue
                self._cond.wait()
        try:
            return self._connect(key), False
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _release(self, key: _Key, conn: http.client.HTTPConnection, reusable: bool) -> None:
        with self._cond:
            if reusable and not self._closed:
                self._idle.setdefault(key, []).append(conn)
            else:
                conn.close()
                self._open -= 1
            self._cond.notify()

    def _connect(self, key: _Key) -> http.client.HTTPConnection:
        scheme, host, port = key
        proxy = _proxy_for(scheme, host)
        conn: http.client.HTTPConnection
        if proxy is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=ssl_context())
            else:
                conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        else:
            p = urlsplit(proxy)
            phost, pport = p.hostname or "", p.port or (443 if p.scheme == "https" else 80)
            if scheme == "https":
                conn = http.client.HTTPSConnection(phost, pport, timeout=self.timeout, context=ssl_context())
                conn.set_tunnel(host, port)
            else:
                conn = _ProxiedHTTPConnection(phost, pport, timeout=self.timeout)
        return conn

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for conns in self._idle.values():
                for conn in conns:
                    conn.close()
                    self._open -= 1
            self._idle.clear()
            self._cond.notify_all()

    # -- requests ---------------------------------------------------------------------------------------------
    def get(self, url: str, *, headers: dict[str, str] | None = None, span: tuple[int, int] | None = None,
            cap: int | None = None) -> Response:
        """GET url (or bytes [start, end) of it), following redirects; at most
        `cap` body bytes are kept and, past them, the connection is dropped
        rather than the rest read. Raises HubHTTPError for an answer of 400 or
        more, HubTimeout or HubTransportError."""
        asked = {"User-Agent": self.user_agent, "Accept-Encoding": "identity", **(headers or {})}
        if span is not None:
            asked["Range"] = f"bytes={span[0]}-{span[1] - 1}"
        located = self._located.get(url)
        if located is not None:
            try:
                resp = self._follow(located, asked, cap, span)
                return resp
            except HubHTTPError as exc:
                if exc.status not in (401, 403, 404, 410):
                    raise
                self._located.pop(url, None)  # an expired signed address: ask the Hub again
        resp = self._follow(url, asked, cap, span)
        if resp.redirects and resp.status < 300:
            self._located[url] = resp.url
        return resp

    def _follow(self, url: str, asked: dict[str, str], cap: int | None, span: tuple[int, int] | None) -> Response:
        redirects = 0
        while True:
            status, headers, body, received = self._once(url, asked, cap, span)
            if status in _REDIRECTS:
                location = headers.get("location")
                if not location:
                    raise HubTransportError(f"a redirect without a Location from {_origin(url)}")
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise HubTransportError(f"more than {MAX_REDIRECTS} redirects from {_origin(url)}")
                target = urljoin(url, location)
                if urlsplit(target).scheme not in ("http", "https"):
                    raise HubTransportError(f"a redirect to a non-HTTP address from {_origin(url)}")
                if _origin(target) != _origin(url):
                    asked = {k: v for k, v in asked.items() if k.lower() != "authorization"}  # as browsers do
                url = target
                continue
            if status >= 400:
                raise HubHTTPError(status, headers, body, url)
            return Response(status, headers, body, url, redirects, received)

    def _once(self, url: str, asked: dict[str, str], cap: int | None,
              span: tuple[int, int] | None) -> tuple[int, dict[str, str], bytes, int]:
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        key: _Key = (scheme, parts.hostname or "", port)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        for fresh_try in (False, True):
            conn, reused = self._acquire(key)
            if isinstance(conn, _ProxiedHTTPConnection):
                target = url
            reusable = False
            try:
                try:
                    conn.request("GET", target, headers=asked)
                    resp = conn.getresponse()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if reused and not fresh_try:
                        continue  # the server had closed this idle connection: once more on a new one
                    raise
                status, headers = resp.status, {k.lower(): v for k, v in resp.getheaders()}
                body, received, complete = _read_body(resp, status, headers, cap, span)
                reusable = complete and not resp.will_close
                return status, headers, body, received
            except TimeoutError:
                raise HubTimeout(f"no answer from {_origin(url)} within {self.timeout:g} s") from None
            except (OSError, http.client.HTTPException) as exc:
                reason = str(exc).strip() or type(exc).__name__
                raise HubTransportError(f"{type(exc).__name__}: {reason}") from None
            finally:
                self._release(key, conn, reusable)
        raise AssertionError("unreachable")


def _read_body(resp: http.client.HTTPResponse, status: int, headers: dict[str, str], cap: int | None,
               span: tuple[int, int] | None) -> tuple[bytes, int, bool]:
    """(kept body, bytes received, whether the body was read to its end)."""
    if status in _REDIRECTS or status >= 400:
        length = _int(headers.get("content-length"))
        if length is not None and length <= MAX_ERROR_BODY:
            data = resp.read()
            return data, len(data), True
        return b"", 0, False
    skip = span[0] if span is not None and status == 200 else 0  # 200 to a Range: the whole file came
    want = None if cap is None else skip + cap
    length = _int(headers.get("content-length"))
    if want is None or (length is not None and length <= want):
        whole = resp.read()
        return whole[skip:] if skip else whole, len(whole), True
    buf = bytearray()
    while len(buf) < want:  # read what is needed, then drop the connection: the rest is never pulled
        chunk = resp.read1(min(65536, want - len(buf)))
        if not chunk:
            break
        buf += chunk
    complete = resp.isclosed() or (length is not None and len(buf) >= length)
    return bytes(buf[skip:want]), len(buf), complete


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _origin(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


def _proxy_for(scheme: str, host: str) -> str | None:
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme)
    bypass = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009 - public, but not in typeshed
    if not proxy or bypass(host, proxies):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class _ProxiedHTTPConnection(http.client.HTTPConnection):
    """Plain http through a proxy: the request line carries the absolute URL."""


def offline() -> bool:
    """HF_HUB_OFFLINE, as huggingface_hub reads it."""
    return (os.environ.get("HF_HUB_OFFLINE") or "").strip().lower() in ("1", "on", "yes", "true")


def warm() -> None:
    """What a worker process pays once before its first job: the SSL context
    and the resolver's first call."""
    ssl_context()
    try:
        socket.getaddrinfo("localhost", 443)
    except OSError:
        pass
