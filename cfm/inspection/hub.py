"""The Hugging Face Hub as a source: a repo read through `huggingface_hub`
without downloading its weights.

One model-info call (`/api/models/{repo}/revision/{rev}?blobs=true`, what
`HfApi.model_info(files_metadata=True)` asks) resolves the revision to a
commit sha and lists the files with their sizes; every later read is pinned
to that sha, so a branch moving during the inspection cannot mix two
commits. The small files (config.json, the index, tokenizer.json) are then
fetched at once, whole; a safetensors header with exact HTTP Range requests:
a first range sized from the index (what the shard's tensor names take),
then, if the 8-byte length says the header is longer, exactly the rest,
straight from the CDN address the first read was redirected to. At most 8
connections, kept alive and reused, whatever the shard count
(hubclient.py: the standard library's http.client, not huggingface_hub's
client, whose import alone cost more than most inspections).

The server is whatever `HF_ENDPOINT` says *now* (read at each call, not at
import like `huggingface_hub.constants`). Xet is never used: its protocol
would fetch whole chunks of weights. HF_HUB_OFFLINE is honoured.

Failures become SourceError codes: repo_not_found, revision_not_found,
access_denied (gated, private or refused token), hub_unavailable (network
errors, 5xx, 429 after a few retries with backoff and jitter) and timeout.
Only transient faults are retried; a 404 or 401 is an answer. The token is
sent per request and never appears in a message or a log.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")  # for huggingface_hub, where Prepare still uses it

from . import hubclient  # noqa: E402
from .hubclient import HubClient, HubHTTPError, HubTimeout, HubTransportError  # noqa: E402
from .hubids import is_repo_id, is_revision  # noqa: E402
from .limits import InspectLimits  # noqa: E402
from .sources import FileTooLarge, ProgressFn, Source, SourceError  # noqa: E402

DEFAULT_ENDPOINT = "https://huggingface.co"
#: bytes asked on a header's first read when no index says how long it is
HEADER_PREFETCH = 100_000
#: ... of a single-file model (no index): most single-file models' headers fit (1B-3B: 15-35 kB), else
#: the rest is one more range straight from the CDN; 100 kB, as get_safetensors_metadata asks, would be
#: 3x what an 8B's header takes
HEADER_FIRST_READ = 49_152
#: a header entry beyond its name: `"":{"dtype":"BF16","shape":[16384,53248],"data_offsets":[a,b]},` with
#: offsets of up to 12 digits (a few bytes over is cheaper than a second round trip)
HEADER_BYTES_PER_TENSOR = 96
HEADER_SLACK = 256  # {"__metadata__":{"format":"pt"}} and the padding to 8 bytes
#: shards read at once, and the most connections open at once
PARALLELISM = 8
#: attempts per request (1 + retries) and the backoff between them
ATTEMPTS = 4
BACKOFF_BASE = 0.25
BACKOFF_MAX = 4.0
#: a Retry-After longer than this is not waited for: the Hub is unavailable now
RETRY_AFTER_MAX = 10.0
#: seconds to connect and between bytes (huggingface_hub's HF_HUB_DOWNLOAD_TIMEOUT, default 10)
DEFAULT_TIMEOUT = 10.0
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
USER_AGENT = "cfm-inspect/0.1 (huggingface_hub-compatible)"

T = TypeVar("T")

# httpx logs every request at INFO (Prepare's downloads use it): a worker's log and the command's stderr
# (whose contract is one line on failure) must not fill with them. A level set by the deployment wins.
if logging.getLogger("httpx2").level == logging.NOTSET:
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def endpoint() -> str:
    """The Hub's address as the environment says now."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _default_timeout() -> float:
    try:
        return float(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT") or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT


def parse_repo_spec(spec: str, revision: str | None = None) -> tuple[str, str | None]:
    """(repo_id, revision) from `hf://org/name[@rev]`, `org/name[@rev]` or a
    legacy single-segment id; SourceError("source_unreadable") when it is not
    a valid repo id, before anything goes on the network."""
    revision = revision or None
    raw = spec.strip()
    repo_id = raw[len("hf://"):] if raw.lower().startswith("hf://") else raw
    if raw.lower().startswith("hf://"):
        repo_id = repo_id.removeprefix("models/")  # hf://models/org/name is the same repo
    repo_id = repo_id.rstrip("/")
    if "@" in repo_id:
        repo_id, _, pinned = repo_id.partition("@")
        if revision and pinned and revision != pinned:
            raise SourceError("source_unreadable",
                              f"{_show(spec)} names revision {pinned!r} but the revision given is {revision!r}; "
                              "give only one")
        revision = pinned or revision
    if not is_repo_id(repo_id):
        raise SourceError(
            "source_unreadable",
            f"{_show(spec)} is neither an existing folder or archive nor a Hub repo id "
            "(org/name, hf://org/name or a single name such as gpt2)",
        ) from None
    if revision is not None and not is_revision(revision):
        raise SourceError("source_unreadable", f"{_show(revision)} is not a valid revision (branch, tag or commit)")
    return repo_id, revision


def _show(text: str) -> str:
    """A user's input in a one-line message: quoted, escaped, not too long."""
    return repr(text[:200] + ("…" if len(text) > 200 else ""))


class HubSource(Source):
    """A Hub repo pinned to one commit."""

    def __init__(self, *, repo_id: str, sha: str, files: dict[str, int], endpoint: str, token: str | None,
                 timeout: float, attempts: int, client: HubClient | None = None):
        super().__init__(description=f"hf://{repo_id}@{sha}", parallelism=PARALLELISM,
                         header_prefetch=HEADER_PREFETCH)
        self.repo_id = repo_id
        self.sha = sha
        self.files = files
        self.endpoint = endpoint
        self._token = token  # never logged, never in a message
        self.timeout = timeout
        self.attempts = attempts
        self._client = client or HubClient(timeout=timeout, max_connections=PARALLELISM, user_agent=USER_AGENT)
        #: shard -> bytes its header likely takes, from the index (see read_range)
        self._header_guess: dict[str, int] = {}
        #: once the Hub is found down, the other shard reads in flight fail at once
        #: instead of each spending its own retries (the engine waits for them all)
        self._down: SourceError | None = None
        #: reads started ahead of the engine's asking (prefetch): path -> future bytes
        self._ahead: dict[tuple[str, int, int], Future[bytes]] = {}
        self._ahead_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:  # the dataclass repr would show the token
        return f"HubSource({self.description!r})"

    @property
    def connections_opened(self) -> int:
        return self._client.opened

    def list_files(self) -> dict[str, int]:
        return self.files

    def url(self, path: str) -> str:
        """The file's address at the pinned commit."""
        return f"{self.endpoint}/{self.repo_id}/resolve/{self.sha}/{quote(path)}"

    _url = url

    # -- reads ahead -------------------------------------------------------------------------------------------
    def prefetch(self, files: Iterable[str] = (), headers: Iterable[str] = ()) -> None:
        """Start reading these small files whole, and the first range of these
        shards' headers, at once: the engine asks for them one after another,
        and each round trip it waits for is latency. A read that fails here
        fails again, with its message, when the engine asks for it."""
        jobs: list[tuple[tuple[str, int, int], tuple[int, int] | None, int]] = []  # key, span, cap
        for path in files:
            size = self.files.get(path)
            if size is not None and size <= _PREFETCH_SMALL_MAX:
                jobs.append(((path, -1, size), None, size + 1))
        for path in headers:
            size = self.files.get(path)
            if size:
                want = min(size, self._first_read(path, self.header_prefetch))
                jobs.append(((path, 0, want), (0, want), want))
        if not jobs:
            return
        with self._ahead_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=PARALLELISM, thread_name_prefix="cfm-hub-ahead")
            for key, span, cap in jobs:
                if key not in self._ahead:
                    self._ahead[key] = self._pool.submit(self._get, key[0], span, cap)

    def _take_ahead(self, key: tuple[str, int, int]) -> bytes | None:
        with self._ahead_lock:
            future = self._ahead.pop(key, None)
        return None if future is None else future.result()

    def close(self) -> None:
        with self._ahead_lock:
            pool, self._pool = self._pool, None
            for future in self._ahead.values():
                future.cancel()
            self._ahead.clear()
        if pool is not None:
            # Not waiting: a read ahead still in flight (one the engine never asked for, or a job
            # cancelled mid-inspection) ends on its own; the closed client takes no new request.
            pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # -- the Source interface -------------------------------------------------------------------------------------
    def read_file(self, path: str, max_bytes: int) -> bytes:
        size = self.files.get(path)
        if size is not None and size > max_bytes:
            raise FileTooLarge(path, size, max_bytes)
        data = self._take_ahead((path, -1, size)) if size is not None else None
        if data is None:
            data = self._get(path, None, max_bytes + 1)
        if len(data) > max_bytes:
            raise FileTooLarge(path, len(data), max_bytes)
        if path.endswith(".safetensors.index.json"):
            self._learn_header_sizes(data)
        return data

    def read_range(self, path: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        if start == 0 and length == self.header_prefetch:
            # The engine's speculative first read of a header: sized from the index (see _first_read).
            # Fewer bytes than asked is fine: the engine reads the rest if the header is longer.
            length = min(length, self._first_read(path, length))
            ahead = self._take_ahead((path, 0, length))
            if ahead is not None:
                return ahead
        return self._get(path, (start, start + length), length)

    def _first_read(self, path: str, asked: int) -> int:
        guess = self._header_guess.get(path)
        if guess is not None:
            return min(asked, guess)
        return min(asked, HEADER_FIRST_READ)

    def _learn_header_sizes(self, raw: bytes) -> None:
        try:
            weight_map = json.loads(raw).get("weight_map")
        except (ValueError, RecursionError, AttributeError):
            return  # the engine reports a bad index; reads stay correct without a guess
        if not isinstance(weight_map, dict):
            return
        per_shard: dict[str, int] = {}
        for name, shard in weight_map.items():
            if isinstance(shard, str):
                per_shard[shard] = per_shard.get(shard, 0) + len(name.encode()) + HEADER_BYTES_PER_TENSOR
        self._header_guess = {shard: 8 + HEADER_SLACK + n for shard, n in per_shard.items()}

    def _get(self, path: str, span: tuple[int, int] | None, cap: int) -> bytes:
        """GET a file or a byte range of it, keeping at most `cap` bytes of
        body whatever the server does (a server that ignores Range must not
        make us download the weights)."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}

        def once() -> bytes:
            try:
                resp = self._client.get(self.url(path), headers=headers, span=span, cap=cap)
            except HubHTTPError as exc:
                if span and exc.status == 416:
                    self._count(0)
                    return b""
                raise
            for _ in range(resp.redirects):
                self._count(0)  # each redirect is a request too
            if span and resp.status == 206 and not _range_starts_at(resp.headers, span[0]):
                raise SourceError("hub_unavailable", f"the Hub at {self.endpoint} answered another byte range "
                                  f"than asked for {path} of {self.repo_id}")
            self._count(resp.received)
            return resp.body[:cap]

        if self._down is not None:
            raise SourceError(self._down.code, self._down.message)
        try:
            return _with_retries(once, repo=self.repo_id, what=f"{path} of {self.repo_id}",
                                 endpoint=self.endpoint, attempts=self.attempts, timeout=self.timeout)
        except SourceError as exc:
            if exc.code in ("hub_unavailable", "timeout"):
                self._down = exc
            raise


#: small files larger than this are not read ahead (the engine may refuse them by their size)
_PREFETCH_SMALL_MAX = 16_000_000


def _range_starts_at(headers: Any, start: int) -> bool:
    """Content-Range ("bytes 0-99999/4976698672") starts where asked."""
    value = headers.get("Content-Range") or headers.get("content-range") or ""
    try:
        return int(value.split()[1].split("-")[0]) == start
    except (IndexError, ValueError):
        return False


def _read_small(resp: Any) -> None:
    """Read an httpx error body so its message can be shown, unless it is large."""
    try:
        if int(resp.headers.get("Content-Length", "0")) < 1_000_000:
            resp.read()
    except Exception:  # noqa: BLE001 - only a message is at stake
        pass


def _with_retries(fn: Callable[[], T], *, repo: str, what: str, endpoint: str, attempts: int,
                  timeout: float) -> T:
    """Call fn, retrying transient faults with exponential backoff (each
    wait jittered between half and all of it), and turn every failure into a
    SourceError. fn may use hubclient (the inspection) or huggingface_hub's
    httpx client (Prepare's downloads): both kinds of failure are understood."""
    for attempt in range(1, attempts + 1):
        last = attempt == attempts
        wait = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
        wait = wait / 2 + random.uniform(0, wait / 2)  # jitter: many workers must not retry in step
        try:
            return fn()
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below; anything else is re-raised
            answer = _http_answer(exc)
            kind = _transport_kind(exc) if answer is None else None
            if answer is None and kind is None:
                raise  # a bug, not the Hub
            if kind == "timeout":
                if last:
                    raise SourceError("timeout", f"the Hub at {endpoint} did not answer within {timeout:g} s "
                                      f"while reading {what} ({attempts} attempts)") from None
            elif kind == "offline":
                raise SourceError("hub_unavailable", "HF_HUB_OFFLINE is set: the Hub cannot be reached") from None
            elif kind is not None:  # "transport" or "redirects"
                if last or kind == "redirects":
                    reason = str(exc).strip() or type(exc).__name__  # these messages carry no headers, no token
                    raise SourceError("hub_unavailable", f"cannot reach the Hub at {endpoint} while reading {what} "
                                      f"({attempt} attempts): {reason}") from None
            else:
                assert answer is not None
                status, headers = answer
                if status not in _TRANSIENT_STATUS:
                    raise _answer_error(exc, status, headers, repo=repo, what=what, endpoint=endpoint) from None
                retry_after = _retry_after(status, headers)
                if last or (retry_after is not None and retry_after > RETRY_AFTER_MAX):
                    more = f"; it asks to retry after {retry_after:g} s" if retry_after else ""
                    raise SourceError("hub_unavailable", f"the Hub at {endpoint} answered {status} while reading "
                                      f"{what} ({attempt} attempts){more}") from None
                if retry_after is not None:
                    wait = retry_after
        time.sleep(wait)
    raise AssertionError("unreachable")


def _http_answer(exc: Exception) -> tuple[int, Any] | None:
    """(status, headers) of an HTTP answer of 400 or more, from either client."""
    if isinstance(exc, HubHTTPError):
        return exc.status, exc.headers
    errors = sys.modules.get("huggingface_hub.errors")  # only if that client is in use at all
    if errors is not None and isinstance(exc, errors.HfHubHTTPError):
        resp = exc.response
        return (resp.status_code if resp is not None else 0), (resp.headers if resp is not None else {})
    return None


def _transport_kind(exc: Exception) -> str | None:
    """timeout, transport, redirects or offline for a failure to get an answer, else None."""
    if isinstance(exc, HubTimeout):
        return "timeout"
    if isinstance(exc, HubTransportError):
        return "redirects" if "redirects" in str(exc) else "transport"
    httpx = sys.modules.get("httpx2")
    if httpx is not None:
        if isinstance(exc, httpx.TimeoutException):
            return "timeout"
        if isinstance(exc, httpx.TooManyRedirects):
            return "redirects"
        if isinstance(exc, httpx.TransportError):
            return "transport"
    errors = sys.modules.get("huggingface_hub.errors")
    if errors is not None and isinstance(exc, errors.OfflineModeIsEnabled):
        return "offline"
    if isinstance(exc, RuntimeError) and "closed" in str(exc):
        # huggingface_hub closes its shared client after a connection error elsewhere in the
        # process; get_session() makes a new one on the next attempt.
        return "transport"
    return None


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name)
    return value if value is not None else headers.get(name.lower())


def _retry_after(status: int, headers: Any) -> float | None:
    """Seconds the Hub asks us to wait: Retry-After, or its RateLimit header
    (`"api";r=0;t=55`) when the quota is spent."""
    value = _header(headers, "Retry-After")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass  # an HTTP date: fall through
    if status == 429:
        fields = dict(part.split("=", 1) for part in (_header(headers, "RateLimit") or "").replace(" ", "")
                      .split(";") if "=" in part)
        try:
            if int(fields["r"]) == 0:
                return float(fields["t"])
        except (KeyError, ValueError):
            return None
    return None


def _answer_error(exc: Exception, status: int, headers: Any, *, repo: str, what: str,
                  endpoint: str) -> SourceError:
    """A definite answer from the Hub (not worth retrying) as a SourceError,
    classified as huggingface_hub's hf_raise_for_status does (X-Error-Code,
    X-Error-Message, the status)."""
    code = _header(headers, "X-Error-Code")
    server_message = _header(headers, "X-Error-Message") or ""
    if code == "GatedRepo":
        return SourceError("access_denied", f"{repo} is a gated repo: request access on its Hub page and pass a "
                           "token of an account that has it (--token)")
    if code == "RevisionNotFound":
        return SourceError("revision_not_found", f"{repo} has no revision named in the request ({what})")
    if server_message == "Access to this resource is disabled.":
        return SourceError("access_denied", f"{repo} is disabled on the Hub")
    invalid_token = status == 401 and "invalid credentials" in server_message.lower()
    repo_missing = code == "RepoNotFound" or (status == 401 and not invalid_token and code != "EntryNotFound")
    if repo_missing and (code == "RepoNotFound" or status == 404):
        # Not "no local folder named ...": only the command line also looked for one, and says so itself.
        return SourceError("repo_not_found", f"no Hub repo {repo} at {endpoint} (if it is private, pass a token that "
                           "can read it)")
    if invalid_token:
        return SourceError("access_denied", "the Hub refused the token (invalid or expired): pass a valid token, "
                           "or none for a public repo")
    if status in (401, 403) or repo_missing:
        return SourceError("access_denied", f"the Hub refused access to {what} ({status}): pass a token that can "
                           "read this repo (--token), or request access on its Hub page")
    if code == "EntryNotFound":
        return SourceError("source_unreadable", f"the Hub lists {what} but cannot serve it (404)")
    return SourceError("hub_unavailable", f"the Hub at {endpoint} answered {status} while reading {what}")


def public_message(message: str, endpoints: tuple[str, ...] = ()) -> str:
    """A message of this module as a server shows it to its users: they
    reach "the Hub", and the address the server uses (HF_ENDPOINT, perhaps an
    internal mirror) is not theirs to know. The command line, whose user set
    HF_ENDPOINT, prints the message as it is."""
    for base in sorted({e.rstrip("/") for e in (*endpoints, endpoint()) if e}, key=len, reverse=True):
        message = message.replace(f"{base} did not answer like the Hugging Face Hub (HF_ENDPOINT)",
                                  "the Hub did not answer like the Hugging Face Hub")
        message = message.replace(f"the Hub at {base}", "the Hub").replace(f" at {base}", " on the Hub")
        message = re.sub(re.escape(base) + r"[^\s\"')]*", "the Hub", message)  # a URL within a library's message
    # The command line's own words: a page has a token field, not a --token flag.
    return message.replace("no Hub repo ", "no repo ").replace(" (--token)", "")


def open_hub(spec: str, *, limits: InspectLimits, revision: str | None = None, token: str | None = None,
             progress: ProgressFn | None = None, timeout: float | None = None,
             attempts: int = ATTEMPTS, hub_endpoint: str | None = None) -> HubSource:
    """Resolve `spec` at `revision` (default main) to a commit and list its
    files. The Hub is `hub_endpoint` when given, else HF_ENDPOINT now."""
    repo_id, revision = parse_repo_spec(spec, revision)
    base = hub_endpoint.rstrip("/") if hub_endpoint else endpoint()
    timeout = timeout if timeout is not None else _default_timeout()
    token = token or None  # never the machine's stored token: only the one passed
    if hubclient.offline():
        raise SourceError("hub_unavailable", "HF_HUB_OFFLINE is set: the Hub cannot be reached")
    if progress:
        progress("resolving_revision", 0, 0)
    where = f"{repo_id}@{revision}" if revision else repo_id
    client = HubClient(timeout=timeout, max_connections=PARALLELISM, user_agent=USER_AGENT)
    url = f"{base}/api/models/{repo_id}" + (f"/revision/{quote(revision, safe='')}" if revision else "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    requests = 0

    def info() -> dict:
        nonlocal requests
        requests += 1
        # capped: a server that streams without end must not fill the memory (100,000 files list in ~20 MB)
        resp = client.get(url + "?blobs=true", headers=headers, cap=max(limits.max_small_file_bytes, 64_000_000))
        requests += resp.redirects
        try:
            model = json.loads(resp.body)
            if not isinstance(model, dict):
                raise ValueError("not an object")
            return model
        except (ValueError, RecursionError):
            # 200 but not a model listing: a captive portal, a proxy's page, another server
            raise SourceError("hub_unavailable", f"{base} did not answer like the Hugging Face Hub "
                              f"(HF_ENDPOINT) for {where}") from None

    try:
        model = _with_retries(info, repo=repo_id, what=f"the file list of {where}", endpoint=base, attempts=attempts,
                              timeout=timeout)
    except SourceError as exc:
        client.close()
        if exc.code == "revision_not_found":
            raise SourceError("revision_not_found",
                              f"{repo_id} has no branch, tag or commit named {revision!r}") from None
        raise
    except BaseException:
        client.close()
        raise
    sha, siblings = model.get("sha"), model.get("siblings")
    if not isinstance(sha, str) or not _SHA_RE.match(sha) or not isinstance(siblings, list):
        client.close()
        raise SourceError("hub_unavailable", f"the Hub at {base} gave no commit or file list for {where}")
    if len(siblings) > limits.max_files:
        client.close()
        raise SourceError("too_large", f"{where} holds more than {limits.max_files} files")
    files: dict[str, int] = {}
    for s in siblings:
        name = s.get("rfilename") if isinstance(s, dict) else None
        size = s.get("size") if isinstance(s, dict) else None
        lfs = s.get("lfs") if isinstance(s, dict) else None
        if size is None and isinstance(lfs, dict):
            size = lfs.get("size")
        if not isinstance(name, str) or isinstance(size, bool) or not isinstance(size, int) or size < 0:
            client.close()
            raise SourceError("hub_unavailable", f"the Hub at {base} gave no size for "
                              f"{name if isinstance(name, str) else 'a file'} in {where}")
        files[name] = size
    source = HubSource(repo_id=repo_id, sha=sha, files=files, endpoint=base, token=token, timeout=timeout,
                       attempts=attempts, client=client)
    for _ in range(requests):
        source._count(0)  # the model-info requests (their bytes are the listing, not the model's files)
    return source


def warm() -> None:
    """A worker process's first inspection must not pay for these (see cfm/celery.py)."""
    hubclient.warm()


__all__ = ["HubSource", "open_hub", "parse_repo_spec", "endpoint", "public_message", "warm"]
