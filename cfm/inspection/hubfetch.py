"""Whole files from a Hub repo onto disk: what Prepare downloads, through the
same source as the inspection (`open_hub`: the same endpoint, token
handling, timeout, retries and error codes, pinned to the same commit).

`fetch_file` grows a file in a `.part` file and resumes what is already
there with a Range request; a transient fault (a dropped connection, a
timeout, a 5xx or 429) is retried with the source's backoff, each retry
resuming where the last one stopped. The bytes are hashed on their way to
the disk and checked against the Hub's ETag (an LFS file's sha256, a git
file's blob sha1), so a download is verified without reading it back.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from huggingface_hub import get_hf_file_metadata
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from .hub import HubSource, _range_starts_at, _read_small, _with_retries
from .sources import SourceError

#: bytes written (and hashed) at a time
CHUNK = 1024**2


class ContentMismatch(SourceError):
    """The file arrived, but not as the Hub declares it (size or checksum);
    its `.part` file is removed, so the next attempt downloads it anew."""

    def __init__(self, message: str):
        super().__init__("source_unreadable", message)


def hub_digest(etag: str | None, size: int):
    """(hash object, expected hex) for the Hub's ETag of a file: its LFS
    sha256 (64 hex digits) or, for a file kept in git, its git blob sha1
    (40). Another form of ETag (a proxy's) is not a digest: None."""
    tag = (etag or "").strip('"').lower()
    if len(tag) == 64 and all(c in "0123456789abcdef" for c in tag):
        return hashlib.sha256(), tag
    if len(tag) == 40 and all(c in "0123456789abcdef" for c in tag):
        return hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False), tag
    return None


def _hash_file(path: Path, fresh):
    digest = fresh.copy()
    if path.is_file():
        with open(path, "rb") as existing:
            while chunk := existing.read(CHUNK):
                digest.update(chunk)
    return digest


def fetch_file(source: HubSource, path: str, part: Path, *, size: int,
               progress: Callable[[int, int], None] | None = None) -> int:
    """Download `path` of the repo into `part`, resuming what `part` holds.
    `progress(done, total)` is called after every chunk (it may raise to
    stop: the part file keeps what arrived). Returns the file's size.
    SourceError on failure; ContentMismatch when it arrived otherwise than
    declared."""
    what = f"{path} of {source.repo_id}"
    token = source._token or False
    url = source.url(path)

    def metadata():
        return get_hf_file_metadata(url, token=token, timeout=source.timeout, endpoint=source.endpoint)

    meta = _with_retries(metadata, repo=source.repo_id, what=what, endpoint=source.endpoint,
                         attempts=source.attempts, timeout=source.timeout)
    expected = meta.size if meta.size is not None else size
    location = meta.location or url
    if part.is_file() and part.stat().st_size > expected:
        part.unlink()
    check = hub_digest(meta.etag, expected)
    state = {"digest": _hash_file(part, check[0]) if check else None}
    headers = build_hf_headers(token=token)
    headers["Accept-Encoding"] = "identity"  # sizes and ranges are of the stored bytes

    def once() -> None:
        done = part.stat().st_size if part.is_file() else 0
        if done >= expected:
            return
        asked = dict(headers)
        if done:
            asked["Range"] = f"bytes={done}-"
        with get_session().stream("GET", location, headers=asked, timeout=source.timeout,
                                  follow_redirects=True) as resp:
            if resp.status_code >= 400:
                _read_small(resp)
                hf_raise_for_status(resp)
            mode = "ab"
            if done and resp.status_code != 206:  # the server ignored Range: the file starts again
                mode, done = "wb", 0
                state["digest"] = check[0].copy() if check else None
            elif done and not _range_starts_at(resp.headers, done):
                raise SourceError("hub_unavailable", f"the Hub at {source.endpoint} answered another byte range "
                                  f"than asked for {what}")
            with open(part, mode) as out:
                for chunk in resp.iter_bytes(CHUNK):
                    if done + len(chunk) > expected:
                        raise ContentMismatch(f"{path} arrived larger than the {expected} bytes the Hub declares")
                    out.write(chunk)
                    if state["digest"] is not None:
                        state["digest"].update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, expected)

    if progress:
        progress(part.stat().st_size if part.is_file() else 0, expected)
    try:
        _with_retries(once, repo=source.repo_id, what=what, endpoint=source.endpoint, attempts=source.attempts,
                      timeout=source.timeout)
    except ContentMismatch:
        part.unlink(missing_ok=True)
        raise
    got = part.stat().st_size if part.is_file() else 0
    if got != expected:
        part.unlink(missing_ok=True)  # the next run starts this file again
        raise ContentMismatch(f"{path} arrived with another size than the Hub declares ({got} of {expected} bytes)")
    if check and state["digest"] is not None and state["digest"].hexdigest() != check[1]:
        part.unlink()
        raise ContentMismatch(f"{path} arrived with other content than the Hub declares (its checksum differs)")
    return expected


__all__ = ["fetch_file", "hub_digest", "ContentMismatch"]
