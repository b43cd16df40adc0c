"""A local Hugging Face Hub for tests and benchmarks: a threaded HTTP server
that speaks the part of the Hub API that `huggingface_hub` and cfm use.

    hub = HubServer().start()
    sha = hub.add_repo("org/name", folder)        # a model folder (tests/modelfactory.py)
    os.environ["HF_ENDPOINT"] = hub.url
    ...
    hub.requests, hub.bytes_sent, hub.served      # what the clients asked for
    hub.stop()

Served:
- GET /api/models/{repo_id}[/revision/{rev}][?blobs=true]: the model info
  (sha, gated, private, siblings; with blobs: size, blobId and lfs).
- HEAD/GET /{repo_id}/resolve/{rev}/{path}: the file, with Range (206 and
  Content-Range) and the headers `huggingface_hub` reads (X-Repo-Commit,
  ETag, X-Linked-Etag and X-Linked-Size for LFS files, Content-Length,
  Accept-Ranges). LFS files answer 302 to a "CDN" path (as the Hub does)
  unless `lfs_redirect` is off; the CDN repeats the metadata headers since it
  is on the same origin, so `huggingface_hub` follows the redirect.
- Hub errors: 404 with X-Error-Code RepoNotFound / RevisionNotFound /
  EntryNotFound, 401 RepoNotFound for a private repo without its token, 401
  or 403 GatedRepo for a gated repo's files without its token, 401 "Invalid
  credentials" for a token the Hub does not know (`tokens`).
- Never Xet: no X-Xet-* header, no xet-auth link.
- Digests are real (git blob sha1, LFS sha256) except for sparse files, whose
  digests are made up: nothing downloads those whole.

Knobs: `latency` (seconds slept before each answer), `ignore_range`, `fail_next(n, kind)`
(the next n requests answer 503/429/500 or a connection reset), `fail_always`.
Counters: `requests`, `bytes_sent` (body bytes), `log` (one entry per
request), `served` (file content sent, one (repo, path, start, end)
per chunk of at most 64 kB), `connections` (TCP connections accepted) and
`peak_connections` (most open at once).

As a script it serves folders until it is stopped, for a client in another
process or another venv (CI runs `cfm-inspect` of a core-only install
against it):

    python tests/hubserver.py [--latency 0.05] org/name=FOLDER ...

It prints its URL on the first line of stdout.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

#: files the Hub stores with LFS (answered by a redirect to the CDN)
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".onnx", ".ckpt")
LFS_MIN_SIZE = 10 * 1024 * 1024


def _sha1(*parts: object) -> str:
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()


def _sha256(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def _is_sparse(full: Path) -> bool:
    st = full.stat()
    return st.st_blocks * 512 < st.st_size


def _digests(full: Path, size: int) -> tuple[str, str]:
    """(git blob sha1, sha256) of the file's content, as the Hub declares
    them; read once, when the file is published."""
    blob, sha = hashlib.sha1(b"blob %d\0" % size), hashlib.sha256()
    with open(full, "rb") as fh:
        while chunk := fh.read(1 << 20):
            blob.update(chunk)
            sha.update(chunk)
    return blob.hexdigest(), sha.hexdigest()


@dataclass
class _File:
    path: str
    full: Path
    size: int
    blob_id: str
    lfs_sha256: str | None  # None: a regular git file

    @property
    def etag(self) -> str:
        return self.lfs_sha256 or self.blob_id


@dataclass
class Repo:
    repo_id: str
    gated: str | bool = False  # False, "auto" or "manual"
    private: bool = False
    token: str | None = None  # the token that grants access (gated or private)
    commits: dict[str, dict[str, _File]] = field(default_factory=dict)  # sha -> files
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> sha

    def resolve(self, rev: str) -> str | None:
        if rev in self.commits:
            return rev
        return self.refs.get(rev)


def _scan(folder: Path, commit: str) -> dict[str, _File]:
    files: dict[str, _File] = {}
    for full in sorted(folder.rglob("*")):
        if not full.is_file() or any(p.startswith(".") for p in full.relative_to(folder).parts):
            continue
        rel = full.relative_to(folder).as_posix()
        size = full.stat().st_size
        lfs = rel.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE
        if _is_sparse(full):
            # A huge sparse model (70B, 405B): nothing reads it whole, and hashing
            # terabytes of holes would take minutes; its digests are made up.
            blob_id, sha256 = _sha1("blob", commit, rel, size), _sha256("lfs", commit, rel, size)
        else:
            blob_id, sha256 = _digests(full, size)
        files[rel] = _File(rel, full, size, blob_id, sha256 if lfs else None)
    return files


class HubServer:
    def __init__(self, *, latency: float = 0.0, lfs_redirect: bool = True):
        self.latency = latency
        self.lfs_redirect = lfs_redirect
        self.ignore_range = False  # answer 200 with the whole file, as a proxy that drops Range does
        self.repos: dict[str, Repo] = {}
        #: tokens the Hub knows (a repo's token is added with it); any other is refused
        #: with 401 "Invalid credentials", even on a public repo, as the Hub does
        self.tokens: set[str] = set()
        self._lock = threading.Lock()
        self._streams = 0  # file bodies being sent right now
        self._failures: list[tuple[str | int, dict]] = []
        self.fail_always: str | int | None = None  # e.g. 503 or "reset"
        self._cdn: dict[str, tuple[Repo, str, _File]] = {}
        self._open_connections = 0
        self.reset_counters()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- content ---------------------------------------------------------------------------------------------
    def add_repo(self, repo_id: str, folder: str | os.PathLike, *, gated: str | bool = False, private: bool = False,
                 token: str | None = None, ref: str = "main") -> str:
        """Publish `folder` as `repo_id` at branch `ref`; returns the commit sha."""
        repo = self.repos.get(repo_id) or Repo(repo_id, gated=gated, private=private, token=token)
        self.repos[repo_id] = repo
        if token:
            self.tokens.add(token)
        return self.add_revision(repo_id, folder, ref=ref)

    def add_revision(self, repo_id: str, folder: str | os.PathLike, *, ref: str | None = None) -> str:
        repo = self.repos[repo_id]
        folder = Path(folder)
        sha = _sha1("commit", repo_id, folder.resolve(), len(repo.commits))
        repo.commits[sha] = _scan(folder, sha)
        if ref:
            repo.refs[ref] = sha
        return sha

    # -- failures and counters ---------------------------------------------------------------------------------
    def fail_next(self, n: int, kind: str | int = 503, retry_after: int | None = None,
                  ratelimit: str | None = None) -> None:
        """The next `n` requests fail: an HTTP status (503, 500, 429...) with
        Retry-After and RateLimit headers if given, "reset" (connection
        reset) or "portal" (200 with an HTML page, as a captive portal)."""
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if ratelimit is not None:
            headers["RateLimit"] = ratelimit
            headers["RateLimit-Policy"] = '"fixed window";"api";q=500;w=300'
        with self._lock:
            self._failures.extend([(kind, headers)] * n)

    def reset_counters(self) -> None:
        with self._lock:
            self.requests = 0
            self.bytes_sent = 0
            self.connections = 0  # opened since the reset
            self.peak_connections = self._open_connections  # those still open count from now
            self.log: list[dict] = []
            self.served: list[tuple[str, str, int, int]] = []  # repo, path, start, end (exclusive)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no file body is being sent. A client that stops reading
        mid-file returns before the server's thread notices; a test that reads
        the counters right after would see that thread's last chunk."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._streams == 0:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("the hub server is still sending a file")
            time.sleep(0.01)

    def _take_failure(self) -> tuple[str | int, dict] | None:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
        if self.fail_always is not None:
            return self.fail_always, {}
        return None

    # Counted *before* the bytes go out: a client may see its answer, return,
    # and have the test read the counters before this thread runs again.
    def _record(self, entry: dict) -> None:
        with self._lock:
            self.requests += 1
            self.log.append(entry)

    def _sending(self, nbytes: int, served: tuple | None = None) -> None:
        with self._lock:
            self.bytes_sent += nbytes
            if served:
                self.served.append(served)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that hung up (e.g. it had the bytes it wanted): not an error
        super().handle_error(request, client_address)


class _Answer(Exception):
    def __init__(self, status: int, code: str | None = None, message: str = "", headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class _Handler(BaseHTTPRequestHandler):
    server_hub: HubServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub: latency is paid per request, not per connection

    def log_message(self, *args) -> None:  # quiet
        pass

    # One handler per TCP connection (keep-alive: many requests each): counting
    # here counts the connections a client opens, as a TLS handshake costs against the Hub.
    def setup(self) -> None:
        super().setup()
        hub = self.server_hub
        with hub._lock:
            hub.connections += 1
            hub._open_connections += 1
            hub.peak_connections = max(hub.peak_connections, hub._open_connections)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            hub = self.server_hub
            with hub._lock:
                hub._open_connections -= 1

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    # -- plumbing --------------------------------------------------------------------------------------------------
    def _handle(self, head: bool) -> None:
        hub = self.server_hub
        entry = {"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                 "auth": self.headers.get("Authorization") is not None, "status": None}
        if hub.latency:
            time.sleep(hub.latency)
        failure = hub._take_failure()
        if failure is not None:
            kind, headers = failure
            if kind == "reset":
                entry["status"] = "reset"
                hub._record(entry)
                self._reset()
                return
            if kind == "portal":
                entry["status"] = "portal"
                hub._record(entry)
                page = b"<html><body>Please sign in to the guest network</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                if not head:
                    self.wfile.write(page)
                return
            self._send_error(entry, _Answer(int(kind), None, "injected failure", headers), head)
            return
        try:
            status, headers, body, served = self._route(head)
        except _Answer as answer:
            self._send_error(entry, answer, head)
            return
        entry["status"] = status
        hub._record(entry)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if head or isinstance(body, bytes):
            if not head:
                hub._sending(len(body))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        # File content (file, start, end), streamed: a client that stops reading stops the sending.
        # `served` records each chunk as it goes out, so it holds what was really sent.
        self.end_headers()
        full, start, end = body
        repo_id, path = served[0], served[1]
        with hub._lock:
            hub._streams += 1
        try:
            with open(full, "rb") as fh:
                fh.seek(start)
                pos = start
                while pos < end:
                    chunk = fh.read(min(65536, end - pos))
                    if not chunk:
                        break
                    hub._sending(len(chunk), (repo_id, path, pos, pos + len(chunk)))
                    self.wfile.write(chunk)
                    pos += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with hub._lock:
                hub._streams -= 1

    def _reset(self) -> None:
        # SO_LINGER 0: close() sends a RST, as a dropped connection does.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _send_error(self, entry: dict, answer: _Answer, head: bool) -> None:
        body = json.dumps({"error": answer.message}).encode()
        entry["status"] = answer.status
        self.server_hub._record(entry)
        if not head:
            self.server_hub._sending(len(body))
        self.send_response(answer.status)
        if answer.code:
            self.send_header("X-Error-Code", answer.code)
        if answer.message:
            self.send_header("X-Error-Message", answer.message)
        for k, v in answer.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") else None

    # -- routes ------------------------------------------------------------------------------------------------------
    def _route(self, head: bool):
        token = self._token()
        if token is not None and token not in self.server_hub.tokens:
            raise _Answer(401, None, "Invalid credentials in Authorization header")
        parts = urlsplit(self.path)
        raw = parts.path
        if raw.startswith("/api/models/"):
            return self._model_info(raw[len("/api/models/"):], parse_qs(parts.query), head)
        if raw.startswith("/__cdn/"):
            return self._cdn(raw[len("/__cdn/"):], head)
        if "/resolve/" in raw:
            return self._resolve(raw, head)
        raise _Answer(404, None, "Not Found")

    def _repo(self, repo_id: str) -> Repo:
        hub = self.server_hub
        repo = hub.repos.get(repo_id)
        if repo is None:
            raise _Answer(404, "RepoNotFound", "Repository not found")
        if repo.private and self._token() != repo.token:
            # the Hub hides private repos: 401 RepoNotFound to everyone without access
            raise _Answer(401, "RepoNotFound", "Repository not found")
        return repo

    def _commit(self, repo: Repo, rev: str) -> str:
        sha = repo.resolve(rev)
        if sha is None:
            raise _Answer(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return sha

    def _model_info(self, rest: str, query: dict, head: bool):
        if "/revision/" in rest:
            repo_part, rev = rest.split("/revision/", 1)
            rev = unquote(rev)
        else:
            repo_part, rev = rest, "main"
        repo = self._repo(unquote(repo_part))
        sha = self._commit(repo, rev)
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for f in repo.commits[sha].values():
            s: dict = {"rfilename": f.path}
            if blobs:
                s.update(size=f.size, blobId=f.blob_id)
                if f.lfs_sha256:
                    s["lfs"] = {"size": f.size, "sha256": f.lfs_sha256, "pointerSize": 134}
            siblings.append(s)
        info = {
            "_id": _sha1("id", repo.repo_id)[:24], "id": repo.repo_id, "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
            "sha": sha, "private": repo.private, "gated": repo.gated, "disabled": False,
            "lastModified": "2025-01-01T00:00:00.000Z", "createdAt": "2024-01-01T00:00:00.000Z",
            "tags": [], "downloads": 0, "likes": 0, "library_name": "transformers", "siblings": siblings,
        }
        body = json.dumps(info).encode()
        return 200, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body, None

    def _resolve(self, raw: str, head: bool):
        repo_part, rest = raw.lstrip("/").split("/resolve/", 1)
        rev_raw, _, path_raw = rest.partition("/")
        repo = self._repo(unquote(repo_part))
        if repo.gated and self._token() != repo.token:
            status = 401 if self._token() is None else 403
            raise _Answer(status, "GatedRepo",
                          f"Access to model {repo.repo_id} is restricted. You must have access to it and be "
                          "authenticated to access it. Please log in.")
        sha = self._commit(repo, unquote(rev_raw))
        path = unquote(path_raw)
        f = repo.commits[sha].get(path)
        if f is None:
            raise _Answer(404, "EntryNotFound", f"Entry not found: {path}")
        meta = {"X-Repo-Commit": sha, "ETag": f'"{f.etag}"', "Accept-Ranges": "bytes"}
        if f.lfs_sha256:
            meta.update({"X-Linked-Etag": f'"{f.lfs_sha256}"', "X-Linked-Size": str(f.size)})
            if self.server_hub.lfs_redirect:
                key = _sha1("cdn", repo.repo_id, sha, path)
                self.server_hub._cdn[key] = (repo, sha, f)
                return 302, {**meta, "Location": f"/__cdn/{key}/{quote(posixpath.basename(path))}",
                             "Content-Length": "0"}, b"", None
        return self._content(repo, sha, f, meta, head)

    def _cdn(self, rest: str, head: bool):
        key = rest.split("/", 1)[0]
        found = self.server_hub._cdn.get(key)
        if found is None:
            raise _Answer(403, None, "Request has expired")
        repo, sha, f = found
        meta = {"X-Repo-Commit": sha, "ETag": f'"{f.etag}"', "Accept-Ranges": "bytes",
                "X-Linked-Etag": f'"{f.etag}"', "X-Linked-Size": str(f.size)}
        return self._content(repo, sha, f, meta, head)

    def _content(self, repo: Repo, sha: str, f: _File, meta: dict, head: bool):
        start, end = 0, f.size  # end exclusive
        status = 200
        rng = self.headers.get("Range")
        if rng and not self.server_hub.ignore_range:
            parsed = _parse_range(rng, f.size)
            if parsed is None:
                raise _Answer(416, None, "Range Not Satisfiable", {"Content-Range": f"bytes */{f.size}"})
            start, end = parsed
            status = 206
            meta["Content-Range"] = f"bytes {start}-{end - 1}/{f.size}"
        headers = {**meta, "Content-Type": "application/octet-stream", "Content-Length": str(end - start)}
        return status, headers, (f.full, start, end), (repo.repo_id, f.path, start, end)


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` as [start, end); None if unsatisfiable."""
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            start, end = max(0, size - n), size
        else:
            start = int(first)
            end = size if last == "" else min(int(last) + 1, size)
    except ValueError:
        return None
    if start >= size or end <= start:
        return None
    return start, end


def main(argv: list[str] | None = None) -> None:
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description="Serve model folders as a local Hugging Face Hub.")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept before each answer")
    parser.add_argument("repos", nargs="*", metavar="ORG/NAME=FOLDER")
    args = parser.parse_args(argv)
    hub = HubServer(latency=args.latency).start()
    for spec in args.repos:
        repo_id, _, folder = spec.partition("=")
        hub.add_repo(repo_id, folder)
    print(hub.url, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
