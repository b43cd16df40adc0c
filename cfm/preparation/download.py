"""Getting a model's files onto local disk for preparation: only the files
the platform needs, from the Hub (resumable), an uploaded archive, or an
uploaded folder; with per-file progress, cancellation, and a disk-space
check before anything is written.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tarfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from cfm import catalog as rules
from cfm.inspection.limits import InspectLimits
from cfm.inspection.sources import SourceError, _safe_member_name

from .errors import Cancelled, PrepareError

#: Room kept free beyond the estimate (logs, temp files, the manifest).
DISK_MARGIN = 64 * 1024**2
_KEEP_SUFFIXES = (".json", ".txt", ".model", ".jinja", ".tiktoken")


def _is_weight_pickle(name: str) -> bool:
    low = name.lower()
    return low.endswith(rules.PYTORCH_WEIGHT_SUFFIXES) and not low.startswith(rules.NON_WEIGHT_PICKLES)


def needed_files(listing: dict[str, int]) -> dict[str, int]:
    """The files of a repo or archive that a prepared model folder needs:
    root-level weights (safetensors when there are any, else PyTorch
    pickles), their index, config and tokenizer files. Not READMEs, images,
    other formats (.gguf, .onnx, .h5, .msgpack), sub-folders (e.g.
    `original/`) or trainer leftovers (optimizer.pt, training_args.bin)."""
    root = {p: s for p, s in listing.items() if "/" not in p and not p.startswith(".")}
    has_safetensors = any(p.endswith(".safetensors") for p in root)
    keep: dict[str, int] = {}
    for path, size in root.items():
        low = path.lower()
        if low.endswith((".safetensors", ".safetensors.index.json")):
            keep[path] = size
        elif low.endswith(".bin.index.json"):
            if not has_safetensors:
                keep[path] = size
        elif _is_weight_pickle(path):
            if not has_safetensors:
                keep[path] = size
        elif low.endswith(_KEEP_SUFFIXES):
            keep[path] = size
    return keep


def check_disk(path: Path, needed: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < needed + DISK_MARGIN:
        raise PrepareError("disk_full", f"preparation needs about {needed + DISK_MARGIN} bytes of disk, "
                           f"{free} are free", needed=needed + DISK_MARGIN, free=free)


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


# --- progress ----------------------------------------------------------------------------------------------
@dataclass
class FileProgress:
    total: int
    done: int = 0


@dataclass
class DownloadProgress:
    """Per-file bytes; `report` is called at most every `interval` seconds
    (and at the end), so a database row is not written per chunk."""

    files: dict[str, FileProgress] = field(default_factory=dict)
    report: Callable[[DownloadProgress], None] | None = None
    cancel: Callable[[], bool] | None = None
    interval: float = 0.5
    started: float = field(default_factory=time.monotonic)
    #: bytes already on disk when this run started (a resumed download)
    resumed: int = 0
    _last: float = 0.0

    @property
    def done(self) -> int:
        return sum(f.done for f in self.files.values())

    @property
    def total(self) -> int:
        return sum(f.total for f in self.files.values())

    @property
    def rate(self) -> float:
        """Bytes per second transferred by this run."""
        elapsed = time.monotonic() - self.started
        return max(self.done - self.resumed, 0) / elapsed if elapsed > 0.2 else 0.0

    @property
    def eta(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None

    def tick(self, force: bool = False) -> None:
        # Cancel is a cheap flag (the heartbeat thread reads the row): checked
        # at every chunk; the report writes a row, so at most every `interval`.
        if self.cancel and self.cancel():
            raise Cancelled()
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            if self.report:
                self.report(self)

    def as_dict(self) -> dict:
        eta = self.eta
        return {"files": {k: {"done": v.done, "total": v.total} for k, v in self.files.items()},
                "done": self.done, "total": self.total, "rate": round(self.rate, 1),
                "eta": round(eta, 1) if eta is not None else None}


def _bar_class(progress: DownloadProgress, name: str):
    """What huggingface_hub calls as `tqdm_class(total=, initial=, ...)`:
    a plain class, so the library passes no tqdm-only arguments."""

    class Bar:
        def __init__(self, *args, total=None, initial=0, **kwargs):
            entry = progress.files.setdefault(name, FileProgress(total or 0))
            if total:
                entry.total = total
            entry.done = initial or 0

        def update(self, n=1):
            progress.files[name].done += n
            progress.tick()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def close(self):
            pass

        def set_description(self, *a, **k):
            pass

        def reset(self, total=None):
            pass

    return Bar


# --- the Hub -------------------------------------------------------------------------------------------------
def hub_listing(repo_id: str, revision: str | None, token: str | None, endpoint: str) -> dict[str, int]:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        api = HfApi(endpoint=endpoint, token=token or False)
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
        return {s.rfilename: int(s.size or 0) for s in (info.siblings or [])}
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise PrepareError("access_denied", f"{repo_id}: not found or access denied ({type(exc).__name__})") from None
    except RevisionNotFoundError:
        raise PrepareError("source_unavailable", f"{repo_id}: revision {revision} not found") from None
    except (HfHubHTTPError, OSError) as exc:
        raise PrepareError("source_unavailable", f"{repo_id}: the Hub could not be reached ({exc})") from None


def _hub_digest(etag: str | None, size: int):
    """(hash object, expected hex) for the Hub's ETag of a file: its LFS
    sha256 (64 hex digits) or, for a file kept in git, its git blob sha1
    (40). Another form of ETag (a proxy's) is not a digest: None."""
    tag = (etag or "").strip('"').lower()
    if len(tag) == 64 and all(c in "0123456789abcdef" for c in tag):
        return hashlib.sha256(), tag
    if len(tag) == 40 and all(c in "0123456789abcdef" for c in tag):
        return hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False), tag
    return None


class _HashingFile:
    """The `.part` file as huggingface_hub's http_get writes it, hashing the
    bytes on their way to the disk, so the download is checked without
    reading it back. What is already there (a resumed download) is hashed
    first; a truncate (a server that ignored Range: the file starts again)
    hashes what is left anew."""

    def __init__(self, fh, path: Path, fresh):
        self.fh, self.path, self.fresh = fh, path, fresh
        self.digest = self._hash_existing()

    def _hash_existing(self):
        self.fh.flush()
        digest = self.fresh.copy()
        with open(self.path, "rb") as existing:
            while chunk := existing.read(1 << 20):
                digest.update(chunk)
        return digest

    def write(self, data):
        self.digest.update(data)
        return self.fh.write(data)

    def truncate(self, size=None):
        result = self.fh.truncate(size)
        self.digest = self._hash_existing()
        return result

    def __getattr__(self, name):
        return getattr(self.fh, name)


def hub_download(repo_id: str, revision: str | None, token: str | None, endpoint: str, files: dict[str, int],
                 dest: Path, progress: DownloadProgress) -> None:
    """Download `files` into `dest`, resuming partial ones: each file grows
    in `dest/.partial/<name>.part` and the next run asks the Hub only for the
    missing range (huggingface_hub's http_get with resume_size). A file is
    renamed into place only once it has the size the Hub declares."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    parts = dest / ".partial"
    parts.mkdir(parents=True, exist_ok=True)
    for name, size in files.items():
        entry = progress.files.setdefault(name, FileProgress(size))
        if (dest / name).is_file() and (dest / name).stat().st_size == size:
            entry.done = size
        elif (parts / f"{name}.part").is_file():
            entry.done = (parts / f"{name}.part").stat().st_size
    progress.resumed = progress.done
    progress.tick(force=True)
    headers = build_hf_headers(token=token or False)
    for name, size in files.items():
        target = dest / name
        if target.is_file() and target.stat().st_size == size:
            continue
        part = parts / f"{name}.part"
        try:
            url = hf_hub_url(repo_id, name, revision=revision, endpoint=endpoint)
            meta = get_hf_file_metadata(url, token=token or False, endpoint=endpoint)
            expected = meta.size if meta.size is not None else size
            resume = part.stat().st_size if part.is_file() else 0
            if resume > expected:
                part.unlink()
                resume = 0
            progress.files[name].total = expected
            check = _hub_digest(meta.etag, expected)
            with open(part, "ab") as fh:
                # the hash of what is already there, then of every byte written
                writer = _HashingFile(fh, part, check[0]) if check else None
                if resume < expected:
                    http_get(meta.location, cast(BinaryIO, writer or fh), resume_size=resume, headers=headers,
                             expected_size=expected, tqdm_class=_bar_class(progress, name))
        except (RepositoryNotFoundError, GatedRepoError):
            raise PrepareError("access_denied", f"{repo_id}: not found or access denied") from None
        except HfHubHTTPError as exc:
            raise PrepareError("download_failed", f"downloading {name} failed: {exc}") from None
        except OSError as exc:
            if is_disk_full(exc):
                raise PrepareError("disk_full", f"the disk filled up while downloading {name}") from None
            raise PrepareError("download_failed", f"downloading {name} failed: {exc}") from None
        if part.stat().st_size != expected:
            part.unlink()  # the next run starts this file again
            raise PrepareError("download_failed", f"{name} arrived with another size than the Hub declares")
        if check and writer is not None and writer.digest.hexdigest() != check[1]:
            part.unlink()
            raise PrepareError("download_failed", f"{name} arrived with other content than the Hub declares "
                                                  f"(its checksum differs); Prepare again to download it anew")
        target.parent.mkdir(parents=True, exist_ok=True)
        part.replace(target)
        progress.files[name].done = expected
        progress.tick(force=True)
    shutil.rmtree(parts, ignore_errors=True)


# --- uploads -------------------------------------------------------------------------------------------------
def archive_listing(path: Path, limits: InspectLimits) -> tuple[dict[str, int], str]:
    """Member sizes of an archive (names relative to the model folder) and
    the prefix to strip (an archive packed as `name/config.json`)."""
    sizes: dict[str, int] = {}
    try:
        for name, size, _info in _members(path, limits):
            sizes[name] = size
    except SourceError as exc:
        raise PrepareError("source_unavailable", exc.message) from None
    tops = {p.split("/", 1)[0] for p in sizes}
    prefix = ""
    if "config.json" not in sizes and len(tops) == 1 and all("/" in p for p in sizes):
        prefix = next(iter(tops)) + "/"
    return {p[len(prefix):]: s for p, s in sizes.items()}, prefix


def _members(path: Path, limits: InspectLimits):
    lower = path.name.lower()
    total = 0
    if lower.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = _safe_member_name(info.filename)
                mode = info.external_attr >> 16
                if info.is_dir() or not name or (mode and not stat.S_ISREG(mode)):
                    continue
                total += info.file_size
                if total > limits.archive_max_bytes:
                    raise SourceError("too_large", f"{path.name} unpacks to more than {limits.archive_max_bytes} bytes")
                yield name, info.file_size, info
    else:
        with tarfile.open(path, "r:gz" if lower.endswith((".tar.gz", ".tgz")) else "r:") as tf:
            for member in tf:
                name = _safe_member_name(member.name)
                if not member.isreg() or not name:
                    continue  # links, devices, FIFOs: never extracted
                total += member.size
                if total > limits.archive_max_bytes:
                    raise SourceError("too_large", f"{path.name} unpacks to more than {limits.archive_max_bytes} bytes")
                yield name, member.size, member


def archive_extract(path: Path, prefix: str, files: dict[str, int], dest: Path, progress: DownloadProgress,
                    limits: InspectLimits) -> None:
    """Extract the wanted regular files, each at most its declared size,
    skipping those already complete (a re-run)."""
    for name, size in files.items():
        entry = progress.files.setdefault(name, FileProgress(size))
        if (dest / name).is_file() and (dest / name).stat().st_size == size:
            entry.done = size
    progress.resumed = progress.done
    progress.tick(force=True)
    lower = path.name.lower()
    try:
        if lower.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for name, _size, info in _members(path, limits):
                    _extract_one(name, prefix, files, dest, progress, lambda i=info: zf.open(i))
        else:
            with tarfile.open(path, "r:gz" if lower.endswith((".tar.gz", ".tgz")) else "r:") as tf:
                for name, _size, member in _members(path, limits):
                    _extract_one(name, prefix, files, dest, progress, lambda m=member: tf.extractfile(m))
    except SourceError as exc:
        raise PrepareError("source_unavailable", exc.message) from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise PrepareError("source_unavailable", f"{path.name} is corrupt: {exc}") from None


def _extract_one(member: str, prefix: str, files: dict[str, int], dest: Path, progress: DownloadProgress,
                 opener) -> None:
    if not member.startswith(prefix):
        return
    name = member[len(prefix):]
    if name not in files or progress.files[name].done == files[name]:
        return
    target = dest / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    entry = progress.files[name]
    entry.done = 0
    fh = opener()
    if fh is None:
        return
    try:
        with fh, open(tmp, "wb") as out:
            while chunk := fh.read(4 * 1024 * 1024):
                if entry.done + len(chunk) > files[name]:
                    raise PrepareError("source_unavailable", f"{name} is larger than the archive declares")
                out.write(chunk)
                entry.done += len(chunk)
                progress.tick()
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise PrepareError("disk_full", f"the disk filled up while unpacking {name}") from None
        raise
    tmp.replace(target)
    progress.tick(force=True)


def folder_partial_files(manifest: dict) -> list[str]:
    """The files a prepared folder needs (needed_files) that an uploaded
    folder holds only in part or not at all: the browser sends large files'
    headers, not their weights. An upload with any of them cannot be
    prepared; the Prepare page asks this before offering to."""
    sizes = {p: int(s) for p, s in (manifest.get("sizes") or {}).items()}
    stored = {p: int(s) for p, s in (manifest.get("stored") or {}).items()}
    return sorted(p for p, s in needed_files(sizes).items() if stored.get(p) != s)


def folder_listing(manifest_dir: Path, manifest: dict) -> dict[str, int]:
    """An uploaded folder is preparable only when the files it needs were
    uploaded whole (the browser may send only headers of large files)."""
    wanted = needed_files({p: int(s) for p, s in (manifest.get("sizes") or {}).items()})
    partial = folder_partial_files(manifest)
    if partial:
        raise PrepareError("unsupported", f"the folder upload holds only part of {partial[0]}; upload the model "
                           "as an archive or register it from the Hub to prepare it", file=partial[0])
    return wanted


def folder_copy(src_root: Path, files: dict[str, int], dest: Path, progress: DownloadProgress) -> None:
    for name, size in files.items():
        entry = progress.files.setdefault(name, FileProgress(size))
        target = dest / name
        if target.is_file() and target.stat().st_size == size:
            entry.done = size
            continue
        source = (src_root / name).resolve()
        if src_root.resolve() not in source.parents:
            raise PrepareError("source_unavailable", f"{name} points outside the upload")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(source, target)
        except OSError as exc:
            if is_disk_full(exc):
                raise PrepareError("disk_full", f"the disk filled up while copying {name}") from None
            raise PrepareError("source_unavailable", f"cannot read {name}: {exc.strerror or exc}") from None
        entry.done = size
        progress.tick(force=True)


def hardlink_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


__all__ = ["needed_files", "check_disk", "DownloadProgress", "hub_listing", "hub_download", "archive_listing",
           "archive_extract", "folder_partial_files", "folder_listing", "folder_copy", "hardlink_or_copy"]
