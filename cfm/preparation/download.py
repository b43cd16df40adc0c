"""Getting a model's files onto local disk for preparation: only the files
the platform needs, from the Hub (resumable), an uploaded archive, or an
uploaded folder; with per-file progress, cancellation, and a disk-space
check before anything is written.
"""
from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cfm.inspection import archives
from cfm.inspection.hub import ATTEMPTS, HubSource, open_hub
from cfm.inspection.hubfetch import ContentMismatch, fetch_file
from cfm.inspection.limits import InspectLimits
from cfm.inspection.sources import SourceError

# The selection lives with the inspection, which reports how much Prepare will download.
from cfm.inspection.weightfiles import is_weight_pickle as _is_weight_pickle  # noqa: F401 (pipeline.py)
from cfm.inspection.weightfiles import needed_files

from .errors import Cancelled, PrepareError

#: Room kept free beyond the estimate (logs, temp files, the manifest).
DISK_MARGIN = 64 * 1024**2


def check_disk(path: Path, needed: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < needed + DISK_MARGIN:
        raise PrepareError("disk_full", f"preparation needs about {needed + DISK_MARGIN} bytes of disk, "
                           f"{free} are free", needed=needed + DISK_MARGIN, free=free)


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _complete(path: Path, size: int) -> bool:
    """The file is there with its full size (a re-run skips it)."""
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:  # a name the file system refuses is no file: the write says why
        return False


def _discard(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


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


# --- the Hub -------------------------------------------------------------------------------------------------
def _hub_error(exc: SourceError, *, during: str | None = None) -> PrepareError:
    """The source layer's failure in Prepare's codes."""
    if exc.code in ("access_denied", "repo_not_found"):
        return PrepareError("access_denied", exc.message)
    if during is not None:
        return PrepareError("download_failed", f"downloading {during} failed: {exc.message}")
    return PrepareError("source_unavailable", exc.message)


def hub_open(repo_id: str, revision: str | None, token: str | None, endpoint: str, limits: InspectLimits, *,
             timeout: float | None = None, attempts: int | None = None) -> HubSource:
    """The repo as the inspection opens it (same caps, timeout, retries,
    error codes), pinned to one commit: every file Prepare downloads comes
    from that commit even if the branch moves meanwhile."""
    try:
        return open_hub(repo_id, limits=limits, revision=revision, token=token, timeout=timeout,
                        attempts=attempts if attempts is not None else ATTEMPTS, hub_endpoint=endpoint)
    except SourceError as exc:
        raise _hub_error(exc) from None


def hub_download(source: HubSource, files: dict[str, int], dest: Path, progress: DownloadProgress) -> None:
    """Download `files` into `dest`, resuming partial ones: each file grows
    in `dest/.partial/<name>.part` and the next run (or the next retry of a
    transient fault) asks the Hub only for the missing range. A file is
    renamed into place only once it has the size and checksum the Hub
    declares."""
    parts = dest / ".partial"
    parts.mkdir(parents=True, exist_ok=True)
    for name, size in files.items():
        entry = progress.files.setdefault(name, FileProgress(size))
        if _complete(dest / name, size):
            entry.done = size
        elif (parts / f"{name}.part").is_file():
            entry.done = (parts / f"{name}.part").stat().st_size
    progress.resumed = progress.done
    progress.tick(force=True)
    for name, size in files.items():
        target = dest / name
        if _complete(target, size):
            continue
        part = parts / f"{name}.part"
        part.parent.mkdir(parents=True, exist_ok=True)
        entry = progress.files[name]

        def moved(done: int, total: int, entry: FileProgress = entry) -> None:
            entry.done, entry.total = done, total
            progress.tick()

        try:
            expected = fetch_file(source, name, part, size=size, progress=moved)
        except ContentMismatch as exc:
            raise PrepareError("download_failed", f"{exc.message}; Prepare again to download it anew") from None
        except SourceError as exc:
            raise _hub_error(exc, during=name) from None
        except OSError as exc:
            if is_disk_full(exc):
                raise PrepareError("disk_full", f"the disk filled up while downloading {name}") from None
            raise PrepareError("download_failed", f"downloading {name} failed: {exc.strerror or exc}") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        part.replace(target)
        entry.done = entry.total = expected
        progress.tick(force=True)
    shutil.rmtree(parts, ignore_errors=True)


# --- uploads -------------------------------------------------------------------------------------------------
def archive_listing(path: Path, limits: InspectLimits) -> tuple[dict[str, int], str]:
    """Member sizes of an archive (names relative to the model folder) and
    the prefix to strip (an archive packed as `name/config.json`): the
    members the inspection saw, with its refusals, and the cap on what
    Prepare unpacks."""
    try:
        return archives.archive_listing(path, limits, unpack=True)
    except SourceError as exc:
        raise PrepareError("source_unavailable", exc.message) from None


def archive_extract(path: Path, prefix: str, files: dict[str, int], dest: Path, progress: DownloadProgress,
                    limits: InspectLimits) -> None:
    """Extract the wanted regular files, each at most its declared size,
    skipping those already complete (a re-run)."""
    for name, size in files.items():
        entry = progress.files.setdefault(name, FileProgress(size))
        if _complete(dest / name, size):
            entry.done = size
    progress.resumed = progress.done
    progress.tick(force=True)
    try:
        for member in archives.iter_members(path, limits, unpack=True):
            _extract_one(member, prefix, files, dest, progress)
    except SourceError as exc:
        raise PrepareError("source_unavailable", exc.message) from None


def _extract_one(member: archives.Member, prefix: str, files: dict[str, int], dest: Path,
                 progress: DownloadProgress) -> None:
    if not member.name.startswith(prefix):
        return
    name = member.name[len(prefix):]
    if name not in files or progress.files[name].done == files[name]:
        return
    target = dest / name
    if dest.resolve() not in target.resolve().parents:  # names are checked already; this is the last word
        raise PrepareError("source_unavailable", f"{name} would be written outside the work folder")
    tmp = target.with_name(target.name + ".partial")
    entry = progress.files[name]
    entry.done = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            while chunk := member.read(4 * 1024 * 1024):
                out.write(chunk)
                entry.done += len(chunk)
                progress.tick()
    except OSError as exc:
        _discard(tmp)
        if is_disk_full(exc):
            raise PrepareError("disk_full", f"the disk filled up while unpacking {name}") from None
        # A name this file system refuses (too long, say): the archive's, not a bug of ours.
        raise PrepareError("source_unavailable", f"cannot unpack {name[:200]}: {exc.strerror or exc}") from None
    except BaseException:
        _discard(tmp)
        raise
    if entry.done != files[name]:
        _discard(tmp)
        raise PrepareError("source_unavailable", f"{name} holds {entry.done} bytes in the archive, not the "
                           f"{files[name]} it declares (a truncated archive?)")
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
        if _complete(target, size):
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


__all__ = ["needed_files", "check_disk", "DownloadProgress", "hub_open", "hub_download", "archive_listing",
           "archive_extract", "folder_partial_files", "folder_listing", "folder_copy", "hardlink_or_copy"]
