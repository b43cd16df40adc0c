"""Where a model's files come from. The engine sees only this interface:
list the files with their sizes, read a small file, read a byte range.

Sources: a local folder, a local archive (read in one streaming pass:
only the small files and the safetensors headers are kept), and the Hub
(`hub.py`). Any failure to read the source at all is a SourceError, which
the command turns into exit status 2.
"""
from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .limits import InspectLimits

#: Files the engine may read whole; everything else is at most a header.
SMALL_FILE_NAMES = frozenset({
    "config.json", "tokenizer.json", "tokenizer_config.json", "tsfm_config.json",
    "model.safetensors.index.json", "pytorch_model.bin.index.json", "generation_config.json",
    "special_tokens_map.json",
})


class SourceError(Exception):
    """The source cannot be read at all. `code` is one of the API's error
    codes: source_unreadable, repo_not_found, revision_not_found,
    access_denied, hub_unavailable, too_large, timeout, cancelled."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class FileTooLarge(Exception):
    def __init__(self, path: str, size: int, cap: int):
        super().__init__(f"{path} is {size} bytes, over the cap of {cap}")
        self.path, self.size, self.cap = path, size, cap


ProgressFn = Callable[[str, int, int], None]


@dataclass
class Source:
    """Base of every source; counts what it reads."""

    description: str = ""
    #: threads the engine may use to read headers of several shards at once
    parallelism: int = 1
    #: bytes to ask for on a header's first read: 8 where a read is cheap
    #: (local disk), ~100 kB where a round trip costs (the Hub)
    header_prefetch: int = 8
    bytes_read: int = 0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes_read += n
            self.requests += 1

    # -- interface ----------------------------------------------------------------------
    def list_files(self) -> dict[str, int]:
        raise NotImplementedError

    def not_files(self) -> dict[str, str]:
        """Entries at the root that exist but are not regular files (a folder,
        a FIFO, a device, a link leading nowhere), by name, with what they are:
        so that a check can say "config.json is a FIFO" rather than "missing"."""
        return {}

    def prefetch(self, files: Iterable[str] = (), headers: Iterable[str] = ()) -> None:
        """A hint: the engine will read these files whole and these safetensors
        headers. A source where each read is a round trip (the Hub) starts them
        at once; elsewhere reading when asked is as fast."""

    def read_file(self, path: str, max_bytes: int) -> bytes:
        raise NotImplementedError

    def read_range(self, path: str, start: int, length: int) -> bytes:
        raise NotImplementedError

    def read_header(self, path: str, first: int, length_of: Callable[[bytes], int]) -> tuple[int, bytes]:
        """A safetensors header: (its declared length n, its n bytes or fewer
        if the file ends first). Reads `first` bytes from the start, asks
        `length_of` (which may raise) what the first 8 say, then the rest.
        A local folder overrides it to open the file once."""
        prefix = self.read_range(path, 0, first)
        n = length_of(prefix)
        if len(prefix) >= 8 + n:
            return n, prefix[8:8 + n]
        if len(prefix) == 8:
            return n, self.read_range(path, 8, n)  # no copy of a header that may be 100 MB
        rest = self.read_range(path, len(prefix), 8 + n - len(prefix))
        return n, prefix[8:] + rest

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISDIR(mode):
        return "folder"
    return "special file"


#: Subfolders deeper than this are not listed (nothing the engine reads lives there).
MAX_FOLDER_DEPTH = 32


class LocalFolderSource(Source):
    def __init__(self, root: str | os.PathLike, limits: InspectLimits):
        resolved = Path(root).resolve()
        super().__init__(description=str(resolved))
        self.root = resolved
        self._root = str(resolved)  # joined as a string per read: no Path objects, no resolve() per file
        self.limits = limits
        self._files: dict[str, int] | None = None
        self._not_files: dict[str, str] = {}

    def not_files(self) -> dict[str, str]:
        self.list_files()
        return self._not_files

    def list_files(self) -> dict[str, int]:
        if self._files is not None:
            return self._files
        files: dict[str, int] = {}
        try:
            root_entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except OSError as exc:
            raise SourceError("source_unreadable", f"cannot list {self.root}: {exc.strerror or exc}") from None
        # Iterative, not os.walk: Python 3.11's os.walk recurses, and a folder nested a few
        # thousand levels deep would raise RecursionError. Folders deeper than
        # MAX_FOLDER_DEPTH, hidden folders and linked folders are not walked; a subfolder
        # that cannot be listed is skipped (the model's own files are at the root).
        stack: list[tuple[str, list[os.DirEntry]]] = [("", root_entries)]
        while stack:
            prefix, entries = stack.pop()
            subdirs = []
            for entry in entries:
                rel = prefix + entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not entry.name.startswith(".") and rel.count("/") < MAX_FOLDER_DEPTH:
                            subdirs.append((rel, entry.path))
                        if not prefix:
                            self._not_files[rel] = "folder"
                        continue
                    st = entry.stat()  # follows links: an HF cache snapshot is all links
                except OSError:
                    if not prefix:
                        self._not_files[rel] = "link that leads nowhere"
                    continue  # a dangling link or a loop is no file
                if not stat.S_ISREG(st.st_mode):
                    if not prefix:
                        self._not_files[rel] = _kind(st.st_mode)
                    continue
                files[rel] = st.st_size
                if len(files) > self.limits.max_files:
                    raise SourceError("too_large", f"{self.root} holds more than {self.limits.max_files} files")
            for rel, full in reversed(subdirs):
                try:
                    stack.append((rel + "/", sorted(os.scandir(full), key=lambda e: e.name)))
                except OSError:
                    continue
        self._files = files
        return files

    def _path(self, path: str) -> str:
        # The names come from list_files (this folder's own listing); open() follows links
        # as resolve() did, without an lstat of every component on every read.
        return os.path.join(self._root, path)

    def read_file(self, path: str, max_bytes: int) -> bytes:
        size = self.list_files().get(path)
        if size is not None and size > max_bytes:
            raise FileTooLarge(path, size, max_bytes)
        # read(n) allocates n bytes up front: ask for what the file holds (plus one, to see
        # it grew), not for the cap, or every tokenizer.json costs a 64 MB buffer.
        want = (min(size, max_bytes) if size is not None else max_bytes) + 1
        with open(self._path(path), "rb") as fh:
            data = fh.read(want)
        self._count(len(data))
        if len(data) > max_bytes:
            raise FileTooLarge(path, len(data), max_bytes)
        return data

    def read_range(self, path: str, start: int, length: int) -> bytes:
        # Unbuffered: a buffered read(8) of a header's length would pull 8 KB from the disk.
        with open(self._path(path), "rb", buffering=0) as fh:
            fh.seek(start)
            chunks, left = [], length
            while left > 0:
                chunk = fh.read(left)
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._count(len(data))
        return data

    def read_header(self, path: str, first: int, length_of: Callable[[bytes], int]) -> tuple[int, bytes]:
        # One open per shard, then exactly the 8-byte length and the header (pread: no seek, no buffer).
        fd = os.open(self._path(path), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            prefix = _pread_exact(fd, 8, 0)
            self._count(len(prefix))
            n = length_of(prefix)
            raw = _pread_exact(fd, n, 8) if len(prefix) == 8 else b""
            self._count(len(raw))
            return n, raw
        finally:
            os.close(fd)


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    """Up to `length` bytes at `offset`; fewer only at the end of the file."""
    data = os.pread(fd, length, offset)
    if len(data) == length or not data:
        return data
    chunks = [data]
    got = len(data)
    while got < length:
        chunk = os.pread(fd, length - got, offset + got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class SnapshotSource(Source):
    """Files already read into memory: small files whole, large ones as a
    prefix (their safetensors header). Used for archives and uploads of
    headers from the browser."""

    def __init__(self, description: str, sizes: dict[str, int], contents: dict[str, bytes]):
        super().__init__(description=description)
        self.sizes = sizes
        self.contents = contents

    def list_files(self) -> dict[str, int]:
        return self.sizes

    def read_file(self, path: str, max_bytes: int) -> bytes:
        size = self.sizes[path]
        if size > max_bytes:
            raise FileTooLarge(path, size, max_bytes)
        data = self.contents.get(path)
        if data is None or len(data) < size:
            raise FileTooLarge(path, size, len(data or b""))
        self._count(len(data))
        return data

    def read_range(self, path: str, start: int, length: int) -> bytes:
        data = self.contents.get(path, b"")
        end = min(start + length, self.sizes[path])
        if end > len(data):
            # Only a header's worth of a large file is kept.
            raise FileTooLarge(path, end, len(data))
        self._count(end - start)
        return data[start:end]


# --- Archives (read by archives.py) -----------------------------------------------------------------

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def is_archive_path(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def wants_whole(name: str) -> bool:
    """Whether the engine reads this file whole (an uploaded folder must send it whole)."""
    base = PurePosixPath(name).name
    return base in SMALL_FILE_NAMES or base.endswith((".json", ".txt", ".model")) and "/" not in name


def safe_member_name(name: str, archive: str = "archive") -> str:
    """A member name (of an archive, or of an uploaded folder) as a relative
    POSIX path, or SourceError naming the archive."""
    shown = repr(name[:200])
    if "\x00" in name:
        raise SourceError("source_unreadable", f"{archive}: member {shown} has a NUL byte in its name; refused")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise SourceError("source_unreadable", f"{archive}: member {shown} has an absolute path; refused")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise SourceError("source_unreadable", f"{archive}: member {shown} points outside the archive (..); refused")
    return "/".join(parts)


def open_local(path: str, limits: InspectLimits) -> Source:
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise SourceError("source_unreadable", f"no such file or folder: {path}") from None
    except OSError as exc:
        raise SourceError("source_unreadable", f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        if not os.access(p, os.R_OK | os.X_OK):
            raise SourceError("source_unreadable", f"cannot read folder {path}: permission denied")
        return LocalFolderSource(p, limits)
    if stat.S_ISREG(st.st_mode):
        if not is_archive_path(p):
            raise SourceError("source_unreadable",
                              f"{path} is a file but not an archive (.zip, .tar, .tar.gz) nor a model folder")
        try:
            from .archives import open_archive

            return open_archive(p.resolve(), limits)
        except PermissionError:
            raise SourceError("source_unreadable", f"cannot read {path}: permission denied") from None
    raise SourceError("source_unreadable", f"{path} is not a folder or an archive")


def open_source(spec: str, *, limits: InspectLimits, revision: str | None = None, token: str | None = None,
                progress: ProgressFn | None = None, hub_timeout: float | None = None,
                hub_attempts: int | None = None) -> Source:
    """The contract's rule: an existing local path wins; otherwise
    `hf://org/name`, `org/name` or a single-segment legacy id is a Hub repo."""
    if not isinstance(spec, str) or not spec.strip() or "\x00" in spec:
        raise SourceError("source_unreadable", "the source is empty or holds a NUL character")
    if os.path.lexists(os.path.expanduser(spec)) or spec.startswith(("/", "./", "../", "~")):
        return open_local(spec, limits)
    if spec.lower().endswith(ARCHIVE_SUFFIXES):
        return open_local(spec, limits)  # a missing archive is a missing file, not a repo id
    from .hub import open_hub  # the Hub client is imported only when needed

    extra: dict = {"timeout": hub_timeout}
    if hub_attempts is not None:
        extra["attempts"] = hub_attempts
    return open_hub(spec, limits=limits, revision=revision, token=token, progress=progress, **extra)

