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
import struct
import tarfile
import threading
import zipfile
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


def _raise(exc: OSError) -> None:
    raise exc


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


# --- Archives -------------------------------------------------------------------------------------

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_NESTED_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".zst")


def is_archive_path(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def _wants_whole(name: str) -> bool:
    base = PurePosixPath(name).name
    return base in SMALL_FILE_NAMES or base.endswith((".json", ".txt", ".model")) and "/" not in name


def _safe_member_name(name: str, archive: str = "archive") -> str:
    """A member name as a relative POSIX path, or SourceError (naming the archive)."""
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


def _ignored_member(name: str) -> bool:
    """Litter that archivers add (macOS resource forks, Finder state): not part of the model,
    and it must not hide a single top folder."""
    parts = name.split("/")
    return parts[0] == "__MACOSX" or parts[-1] in (".DS_Store", "Thumbs.db")


class _Collector:
    """Keeps what the engine may need from a stream of archive members."""

    def __init__(self, archive: Path, limits: InspectLimits, *, streamed: bool):
        self.archive = archive
        self.limits = limits
        #: a .tar.gz is decompressed from start to end, weights included: its total is
        #: capped. A zip or a plain tar is read in place (only headers and small files).
        self.streamed = streamed
        self.sizes: dict[str, int] = {}
        self.contents: dict[str, bytes] = {}
        self.total = 0
        self.kept = 0
        # Headers and small files are held in memory: many shards of 100 MB headers, or many
        # large .json files, must not add up to gigabytes.
        self.kept_cap = 2 * (limits.max_header_bytes + limits.max_small_file_bytes)

    def add(self, name: str, size: int, reader: Callable[[int], bytes]) -> None:
        if len(self.sizes) >= self.limits.archive_max_files:
            raise SourceError("too_large", f"{self.archive.name} has more than {self.limits.archive_max_files} files")
        if size < 0:  # tar's base-256 size field can be negative
            raise SourceError("source_unreadable", f"{self.archive.name}: {name} declares a negative size; refused")
        if name.lower().endswith(_NESTED_SUFFIXES):
            raise SourceError(
                "source_unreadable",
                f"{self.archive.name} contains another archive ({name}); nested archives are not opened",
            )
        self.total += size
        if self.streamed and self.total > self.limits.archive_max_bytes:
            raise SourceError(
                "too_large",
                f"{self.archive.name} unpacks to more than {self.limits.archive_max_bytes} bytes, and a .tar.gz "
                f"is read from start to end, weights included: pack the model as .tar or .zip (read in place), "
                f"or inspect its folder",
            )
        self.sizes[name] = size
        if name.endswith(".safetensors"):
            head = reader(8)
            if len(head) == 8:
                n = struct.unpack("<Q", head)[0]
                if n <= min(self.limits.max_header_bytes, size - 8):
                    head += reader(n)
            self.contents[name] = head
        elif _wants_whole(name) and size <= self.limits.max_small_file_bytes:
            data = reader(size + 1)
            if len(data) != size:
                raise SourceError("source_unreadable", f"{name} in {self.archive.name} is not the size it declares")
            self.contents[name] = data
        self.kept += len(self.contents.get(name, b""))
        if self.kept > self.kept_cap:
            raise SourceError("too_large", f"{self.archive.name}: its headers and small files exceed "
                              f"{self.kept_cap} bytes in all, the most an inspection holds in memory")

    def source(self) -> SnapshotSource:
        sizes, contents = self.sizes, self.contents
        # A model packed as `name/config.json ...`: inspect that folder.
        tops = {p.split("/", 1)[0] for p in sizes}
        if "config.json" not in sizes and len(tops) == 1 and all("/" in p for p in sizes):
            top = next(iter(tops)) + "/"
            sizes = {p[len(top):]: s for p, s in sizes.items()}
            contents = {p[len(top):]: c for p, c in contents.items()}
        return SnapshotSource(str(self.archive), sizes, contents)


class _BoundedReader:
    """Reads a member at most up to its declared size, counting real bytes
    against the archive's caps (a zip may lie about sizes)."""

    def __init__(self, fh, declared: int, collector: _Collector, name: str):
        self.fh, self.left, self.collector, self.name = fh, declared, collector, name

    def __call__(self, n: int) -> bytes:
        n = min(n, self.left + 1)
        data = self.fh.read(n)
        if len(data) > self.left:
            raise SourceError("too_large", f"{self.name} in {self.collector.archive.name} is larger than it declares")
        self.left -= len(data)
        return data


def _check_ratio(archive: Path, declared_total: int, archive_size: int, limits: InspectLimits) -> None:
    # Real weights barely compress; a huge ratio over a large total is a bomb.
    if declared_total > 64 * 1024**2 and declared_total > limits.archive_max_ratio * max(archive_size, 1):
        raise SourceError(
            "too_large",
            f"{archive.name} would unpack to {declared_total} bytes from {archive_size}: "
            f"a compression ratio over {limits.archive_max_ratio}, refused as a zip bomb",
        )


def open_archive(path: Path, limits: InspectLimits) -> SnapshotSource:
    archive_size = path.stat().st_size
    lower = path.name.lower()
    gz = lower.endswith((".tar.gz", ".tgz"))
    collector = _Collector(path, limits, streamed=gz)
    try:
        if lower.endswith(".zip"):
            if not zipfile.is_zipfile(path):
                raise SourceError("source_unreadable", f"{path.name} is not a zip archive")
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
                if len(infos) > limits.archive_max_files:
                    raise SourceError("too_large", f"{path.name} has more than {limits.archive_max_files} members")
                # Read in place: only headers and small files are decompressed, so the
                # declared total is bounded by the ratio, not by a cap on bytes.
                _check_ratio(path, sum(i.file_size for i in infos), archive_size, limits)
                for info in infos:
                    name = _safe_member_name(info.filename, path.name)
                    # Unix file type bits; zero when the archiver set none (Windows, or
                    # Python's writestr, which writes 0o600 without S_IFREG).
                    ftype = stat.S_IFMT(info.external_attr >> 16)
                    if info.is_dir() or not name or _ignored_member(name):
                        continue
                    if ftype == stat.S_IFLNK:
                        raise SourceError("source_unreadable", f"{path.name} holds a symbolic link ({name}); refused")
                    if ftype and ftype != stat.S_IFREG:
                        raise SourceError("source_unreadable", f"{path.name} holds a special file ({name}); refused")
                    if info.file_size > 1024**2 and info.compress_size and \
                            info.file_size > limits.archive_max_ratio * info.compress_size:
                        raise SourceError("too_large", f"{name} in {path.name} compresses {info.file_size}:"
                                          f"{info.compress_size}, refused as a zip bomb")
                    with zf.open(info) as fh:
                        collector.add(name, info.file_size, _BoundedReader(fh, info.file_size, collector, name))
        else:
            if not gz and not tarfile.is_tarfile(path):
                raise SourceError("source_unreadable", f"{path.name} is not a tar archive")
            # A plain tar is opened seekable: skipping a member's weights is a seek.
            # A .tar.gz can only be streamed.
            with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz" if gz else "r:") as tf:
                for member in tf:
                    name = _safe_member_name(member.name, path.name)
                    if member.isdir() or not name or _ignored_member(name):
                        continue
                    if member.issym() or member.islnk():
                        target = member.linkname
                        try:
                            _safe_member_name(target, path.name)
                            outside = target.startswith("/")
                        except SourceError:
                            outside = True
                        if outside:
                            raise SourceError("source_unreadable",
                                              f"{path.name}: link {name} points outside the archive; refused")
                        continue  # regular files only: an inner link is ignored
                    if not member.isreg():
                        raise SourceError("source_unreadable",
                                          f"{path.name} holds a device, FIFO or other special file ({name}); refused")
                    if not gz and not member.issparse() and member.offset_data + member.size > archive_size:
                        raise SourceError("source_unreadable", f"{path.name} is truncated: {name} declares "
                                          f"{member.size} bytes that the file does not hold")
                    body = tf.extractfile(member)
                    if body is None:
                        continue
                    collector.add(name, member.size, _BoundedReader(body, member.size, collector, name))
                    if gz:  # decompressed so far vs. compressed bytes consumed; a plain tar is read in place
                        _check_ratio(path, collector.total, max(raw.tell(), 1), limits)
    except SourceError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, OSError, NotImplementedError,
            RuntimeError, ValueError) as exc:  # zlib.error is an Exception subclass below
        raise SourceError("source_unreadable", f"{path.name} is corrupt or not a supported archive: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - zlib.error and friends; still a clear message
        if type(exc).__module__ in ("zlib", "gzip", "lzma", "bz2"):
            raise SourceError("source_unreadable", f"{path.name} is corrupt: {exc}") from None
        raise
    if not collector.sizes:
        raise SourceError("source_unreadable", f"{path.name} holds no files")
    return collector.source()


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


def iter_limited(items: Iterable, cap: int):
    for i, item in enumerate(items):
        if i >= cap:
            break
        yield item
