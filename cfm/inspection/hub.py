"""The Hugging Face Hub as a source: a repo read through `huggingface_hub`
without downloading its weights.

One `model_info(files_metadata=True)` call resolves the revision to a commit
sha and lists the files with their sizes; every later read is pinned to that
sha, so a branch moving during the inspection cannot mix two commits. Small
files (config.json, tokenizer.json, the index...) are fetched whole; a
safetensors header is fetched with HTTP Range requests (the first 100 kB, as
`huggingface_hub.get_safetensors_metadata` does, then the rest if the header
is longer), several shards at once. A 70B model of 30 shards costs about
thirty requests and well under 2 MB.

The server is whatever `HF_ENDPOINT` says *now* (read at each call, not at
import like `huggingface_hub.constants`). Xet is off: its protocol would
fetch whole chunks of weights.

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
import time
from collections.abc import Callable
from typing import TypeVar

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")  # before huggingface_hub reads its constants

import httpx2  # noqa: E402 - huggingface_hub's HTTP client
from huggingface_hub import HfApi, hf_hub_url  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    DisabledRepoError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status  # noqa: E402

from .hubids import is_repo_id, is_revision  # noqa: E402
from .limits import InspectLimits  # noqa: E402
from .sources import FileTooLarge, ProgressFn, Source, SourceError  # noqa: E402

DEFAULT_ENDPOINT = "https://huggingface.co"
#: bytes asked on a header's first read; ~97% of headers fit (huggingface_hub's figure)
HEADER_PREFETCH = 100_000
#: a shard's header holds ~this many bytes per tensor beyond its name (dtype, shape, offsets)
HEADER_BYTES_PER_TENSOR = 128
HEADER_SLACK = 2048  # __metadata__ and padding
#: shards read at once
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

T = TypeVar("T")

# httpx logs every request at INFO: an inspection's 60 Range reads would flood a
# worker's log and the command's stderr (whose contract is one line on failure).
# An explicit level set by the deployment's logging config wins.
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
                 timeout: float, attempts: int):
        super().__init__(description=f"hf://{repo_id}@{sha}", parallelism=PARALLELISM,
                         header_prefetch=HEADER_PREFETCH)
        self.repo_id = repo_id
        self.sha = sha
        self.files = files
        self.endpoint = endpoint
        self._token = token  # never logged, never in a message
        self.timeout = timeout
        self.attempts = attempts
        #: shard -> bytes its header likely takes, from the index (see read_range)
        self._header_guess: dict[str, int] = {}
        #: once the Hub is found down, the other shard reads in flight fail at once
        #: instead of each spending its own retries (the engine waits for them all)
        self._down: SourceError | None = None

    def __repr__(self) -> str:  # the dataclass repr would show the token
        return f"HubSource({self.description!r})"

    def list_files(self) -> dict[str, int]:
        return self.files

    def _url(self, path: str) -> str:
        return hf_hub_url(self.repo_id, path, revision=self.sha, endpoint=self.endpoint)

    def read_file(self, path: str, max_bytes: int) -> bytes:
        size = self.files.get(path)
        if size is not None and size > max_bytes:
            raise FileTooLarge(path, size, max_bytes)
        data = self._get(path, None, max_bytes + 1)
        if len(data) > max_bytes:
            raise FileTooLarge(path, len(data), max_bytes)
        if path.endswith(".safetensors.index.json"):
            self._learn_header_sizes(data)
        return data

    def read_range(self, path: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        if start == 0 and length == self.header_prefetch and path in self._header_guess:
            # The engine's speculative first read of a header. 100 kB suits a
            # single-file model (one request, like get_safetensors_metadata),
            # but 30 shards x 100 kB would be 3 MB mostly of weights: ask for
            # what the index says this shard's header holds. Fewer bytes than
            # asked is fine: the engine reads the rest if the header is longer.
            length = min(length, self._header_guess[path])
        return self._get(path, (start, start + length), length)

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
        self._header_guess = {shard: 8 + HEADER_SLACK + n + n // 8 for shard, n in per_shard.items()}

    def _get(self, path: str, span: tuple[int, int] | None, cap: int) -> bytes:
        """GET a file or a byte range of it, reading at most `cap` bytes of
        body whatever the server does (a server that ignores Range must not
        make us download the weights)."""
        headers = build_hf_headers(token=self._token or False)
        headers["Accept-Encoding"] = "identity"  # sizes and ranges are of the stored bytes
        if span:
            headers["Range"] = f"bytes={span[0]}-{span[1] - 1}"

        def once() -> bytes:
            with get_session().stream("GET", self._url(path), headers=headers, timeout=self.timeout,
                                      follow_redirects=True) as resp:
                for _ in resp.history:
                    self._count(0)  # each redirect is a request too
                if resp.status_code >= 400:
                    _read_small(resp)
                    hf_raise_for_status(resp)
                if span and resp.status_code == 416:
                    self._count(0)
                    return b""
                skip = span[0] if span and resp.status_code != 206 else 0  # 200: Range ignored
                if span and resp.status_code == 206 and not _range_starts_at(resp, span[0]):
                    raise SourceError("hub_unavailable", f"the Hub at {self.endpoint} answered another byte range "
                                      f"than asked for {path} of {self.repo_id}")
                data = bytearray()
                received = 0
                for chunk in resp.iter_bytes():
                    received += len(chunk)
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    data += chunk
                    if len(data) >= cap:
                        break  # closing the stream drops the connection: the rest is never pulled
                self._count(received)
                return bytes(data[:cap])

        if self._down is not None:
            raise SourceError(self._down.code, self._down.message)
        try:
            return _with_retries(once, repo=self.repo_id, what=f"{path} of {self.repo_id}",
                                 endpoint=self.endpoint, attempts=self.attempts, timeout=self.timeout)
        except SourceError as exc:
            if exc.code in ("hub_unavailable", "timeout"):
                self._down = exc
            raise


def _range_starts_at(resp: httpx2.Response, start: int) -> bool:
    value = resp.headers.get("Content-Range", "")  # "bytes 0-99999/4976698672"
    try:
        return int(value.split()[1].split("-")[0]) == start
    except (IndexError, ValueError):
        return False


def _read_small(resp: httpx2.Response) -> None:
    """Read an error body so its message can be shown, unless it is large."""
    try:
        if int(resp.headers.get("Content-Length", "0")) < 1_000_000:
            resp.read()
    except (ValueError, httpx2.HTTPError):
        pass


def _with_retries(fn: Callable[[], T], *, repo: str, what: str, endpoint: str, attempts: int,
                  timeout: float) -> T:
    """Call fn, retrying transient faults with exponential backoff (each
    wait jittered between half and all of it), and turn every failure into a
    SourceError."""
    for attempt in range(1, attempts + 1):
        last = attempt == attempts
        wait = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
        wait = wait / 2 + random.uniform(0, wait / 2)  # jitter: many workers must not retry in step
        try:
            return fn()
        except httpx2.TimeoutException:
            if last:
                raise SourceError("timeout", f"the Hub at {endpoint} did not answer within {timeout:g} s "
                                  f"while reading {what} ({attempts} attempts)") from None
        except RuntimeError as exc:
            # huggingface_hub closes its shared client after a connection error elsewhere in the
            # process; get_session() makes a new one on the next attempt.
            if "closed" not in str(exc):
                raise  # a bug, not the Hub
            if last:
                raise SourceError("hub_unavailable", f"cannot reach the Hub at {endpoint} while reading {what}: "
                                  f"{exc}") from None
        except OfflineModeIsEnabled:
            raise SourceError("hub_unavailable", "HF_HUB_OFFLINE is set: the Hub cannot be reached") from None
        except (httpx2.TransportError, httpx2.TooManyRedirects) as exc:
            if last or isinstance(exc, httpx2.TooManyRedirects):
                reason = str(exc).strip() or type(exc).__name__  # httpx messages carry no headers, no token
                raise SourceError("hub_unavailable", f"cannot reach the Hub at {endpoint} while reading {what} "
                                  f"({attempt} attempts): {reason}") from None
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status not in _TRANSIENT_STATUS:
                raise _answer_error(exc, repo=repo, what=what, endpoint=endpoint) from None
            retry_after = _retry_after(exc.response)
            if last or (retry_after is not None and retry_after > RETRY_AFTER_MAX):
                more = f"; it asks to retry after {retry_after:g} s" if retry_after else ""
                raise SourceError("hub_unavailable", f"the Hub at {endpoint} answered {status} while reading "
                                  f"{what} ({attempt} attempts){more}") from None
            if retry_after is not None:
                wait = retry_after
        time.sleep(wait)
    raise AssertionError("unreachable")


def _retry_after(resp: httpx2.Response | None) -> float | None:
    """Seconds the Hub asks us to wait: Retry-After, or its RateLimit header
    (`"api";r=0;t=55`) when the quota is spent."""
    if resp is None:
        return None
    value = resp.headers.get("Retry-After")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass  # an HTTP date: fall through
    if resp.status_code == 429:
        try:
            from huggingface_hub.utils._http import parse_ratelimit_headers

            info = parse_ratelimit_headers(resp.headers)
        except Exception:  # noqa: BLE001 - a private helper; without it, our own backoff
            return None
        if info is not None and info.remaining == 0:
            return float(info.reset_in_seconds)
    return None


def _answer_error(exc: HfHubHTTPError, *, repo: str, what: str, endpoint: str) -> SourceError:
    """A definite answer from the Hub (not worth retrying) as a SourceError."""
    resp = exc.response
    status = resp.status_code if resp is not None else None
    code = resp.headers.get("X-Error-Code") if resp is not None else None
    if isinstance(exc, GatedRepoError):
        return SourceError("access_denied", f"{repo} is a gated repo: request access on its Hub page and pass a "
                           "token of an account that has it (--token)")
    if isinstance(exc, RevisionNotFoundError):
        return SourceError("revision_not_found", f"{repo} has no revision named in the request ({what})")
    if isinstance(exc, DisabledRepoError):
        return SourceError("access_denied", f"{repo} is disabled on the Hub")
    if isinstance(exc, RepositoryNotFoundError) and (code == "RepoNotFound" or status == 404):
        # Not "no local folder named ...": only the command line also looked for one, and says so itself.
        return SourceError("repo_not_found", f"no Hub repo {repo} at {endpoint} (if it is private, pass a token that "
                           "can read it)")
    server_message = (resp.headers.get("X-Error-Message") or "") if resp is not None else ""
    if status == 401 and "invalid credentials" in server_message.lower():
        return SourceError("access_denied", "the Hub refused the token (invalid or expired): pass a valid token, "
                           "or none for a public repo")
    if status in (401, 403) or isinstance(exc, RepositoryNotFoundError):
        return SourceError("access_denied", f"the Hub refused access to {what} ({status}): pass a token that can "
                           "read this repo (--token), or request access on its Hub page")
    if isinstance(exc, RemoteEntryNotFoundError):
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
             attempts: int = ATTEMPTS) -> HubSource:
    """Resolve `spec` at `revision` (default main) to a commit and list its files."""
    repo_id, revision = parse_repo_spec(spec, revision)
    base = endpoint()
    timeout = timeout if timeout is not None else _default_timeout()
    token = token or None
    if progress:
        progress("resolving_revision", 0, 0)
    api = HfApi(endpoint=base, token=False)  # never the machine's stored token: only the one passed
    where = f"{repo_id}@{revision}" if revision else repo_id

    def info():
        try:
            return api.model_info(repo_id, revision=revision, files_metadata=True, timeout=timeout,
                                  token=token or False)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, HfHubHTTPError):  # BadRequestError is a ValueError too
                raise
            # 200 but not a model listing: a captive portal, a proxy's page, another server
            raise SourceError("hub_unavailable", f"{base} did not answer like the Hugging Face Hub "
                              f"(HF_ENDPOINT) for {where}") from None

    try:
        model = _with_retries(info, repo=repo_id, what=f"the file list of {where}", endpoint=base, attempts=attempts,
                              timeout=timeout)
    except SourceError as exc:
        if exc.code == "revision_not_found":
            raise SourceError("revision_not_found",
                              f"{repo_id} has no branch, tag or commit named {revision!r}") from None
        raise
    sha = getattr(model, "sha", None)
    if not isinstance(sha, str) or not _SHA_RE.match(sha) or model.siblings is None:
        raise SourceError("hub_unavailable", f"the Hub at {base} gave no commit or file list for {where}")
    if len(model.siblings) > limits.max_files:
        raise SourceError("too_large", f"{where} holds more than {limits.max_files} files")
    files: dict[str, int] = {}
    for s in model.siblings:
        size = s.size if s.size is not None else (s.lfs.size if s.lfs else None)
        if size is None:
            raise SourceError("hub_unavailable", f"the Hub at {base} gave no size for {s.rfilename} in {where}")
        files[s.rfilename] = int(size)
    source = HubSource(repo_id=repo_id, sha=sha, files=files, endpoint=base, token=token, timeout=timeout,
                       attempts=attempts)
    source._count(0)  # the model_info request (its bytes are the listing, not the model's files)
    return source


__all__ = ["HubSource", "open_hub", "parse_repo_spec", "endpoint", "public_message"]
