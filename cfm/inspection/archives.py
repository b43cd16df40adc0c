"""Archives (.zip, .tar, .tar.gz) as a source of model files.

ONE reader of an archive's members, `iter_members`, serves the inspection
(`open_archive` keeps only the small files and the safetensors headers) and
Prepare (which unpacks the files it needs): both see the same members under
the same names, with the same caps and the same refusals, so a report never
describes a file that Prepare would not ship, or the other way round.

What is refused, always with a one-line SourceError naming the archive:
member names that point out (absolute, `..`, a drive letter, a NUL byte),
links that point out, devices, FIFOs and other special files, encrypted
members, nested archives, two members with the same name (or a file that is
also a folder), more members than `archive_max_files`, and bombs: a `.zip`'s
declared sizes against the archive's size, a `.tar.gz` by what was actually
decompressed against what was actually read from the file.

What is skipped, for both: folders, litter that archivers add (`__MACOSX/`,
AppleDouble `._*` files, `.DS_Store`, `Thumbs.db`) and links that stay
inside the archive. A member is a regular file by its TYPE (a tar member's
type, a zip entry's Unix file-type bits when it has any), never by its
permission bits: Python's `ZipFile.writestr` writes 0o600 with no type.
"""
from __future__ import annotations

import gzip
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, cast

from .limits import InspectLimits
from .sources import SnapshotSource, SourceError, safe_member_name, wants_whole

#: members that are themselves archives or compressed files: never opened
NESTED_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".zst")
GZIP_MAGIC = b"\x1f\x8b"
#: below this many bytes unpacked no compression ratio is a bomb (small JSON files compress well)
BOMB_FLOOR = 64 * 1024**2
#: a single zip member under this size is never a bomb by its own ratio
MEMBER_BOMB_FLOOR = 1024**2


@dataclass
class Member:
    """A regular file of an archive. `read(n)` returns at most n bytes of
    its content and is valid only until the iteration moves on."""

    name: str
    size: int
    read: Callable[[int], bytes]


def ignored_member(name: str) -> bool:
    """Litter that archivers add (macOS resource forks and Finder state,
    Windows thumbnails): not part of the model, and it must not hide a
    single top folder."""
    parts = name.split("/")
    base = parts[-1]
    return parts[0] == "__MACOSX" or base in (".DS_Store", "Thumbs.db") or base.startswith("._")


def model_prefix(names) -> str:
    """The folder to strip when a model was packed as `name/config.json ...`
    (one top folder and no config.json at the root), else ''."""
    names = list(names)
    tops = {p.split("/", 1)[0] for p in names}
    if names and "config.json" not in names and len(tops) == 1 and all("/" in p for p in names):
        return next(iter(tops)) + "/"
    return ""


def _refuse(code: str, message: str) -> SourceError:
    return SourceError(code, message)


def _library_error(archive: str, exc: BaseException) -> SourceError | None:
    """A reading library's exception as a SourceError, or None when it is not one of theirs."""
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return _refuse("source_unreadable", f"{archive} holds encrypted members; encrypted archives are not read")
    if isinstance(exc, (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, OSError,
                        NotImplementedError, RuntimeError, ValueError, struct.error)):
        return _refuse("source_unreadable", f"{archive} is corrupt or not a supported archive: {exc}")
    if type(exc).__module__ in ("zlib", "gzip", "lzma", "bz2", "_lzma", "_bz2"):  # zlib.error and friends
        return _refuse("source_unreadable", f"{archive} is corrupt: {exc}")
    return None


class _Walk:
    """The bookkeeping shared by every kind of archive: counts, names seen,
    totals, each member's refusals."""

    def __init__(self, path: Path, limits: InspectLimits, *, capped: bool, too_big: str):
        self.archive = path.name
        self.limits = limits
        #: the declared total is capped (a .tar.gz is decompressed whole; Prepare unpacks)
        self.capped = capped
        self.too_big = too_big
        self.entries = 0
        self.names: set[str] = set()
        self.folders: set[str] = set()
        self.total = 0

    def entry(self) -> None:
        """Every entry counts, folders and litter too: a million empty folders is no model."""
        self.entries += 1
        if self.entries > self.limits.archive_max_files:
            raise _refuse("too_large", f"{self.archive} has more than {self.limits.archive_max_files} members")

    def file(self, name: str, size: int) -> None:
        if size < 0:  # tar's base-256 size field can be negative
            raise _refuse("source_unreadable", f"{self.archive}: {name} declares a negative size; refused")
        if name.lower().endswith(NESTED_SUFFIXES):
            raise _refuse("source_unreadable",
                          f"{self.archive} contains another archive ({name}); nested archives are not opened")
        if name in self.names:
            raise _refuse("source_unreadable",
                          f"{self.archive} holds {name} twice; refused, since it cannot be told which copy "
                          "is the model's (pack each file once)")
        parents = [str(p) for p in PurePosixPath(name).parents if str(p) != "."]
        if name in self.folders or any(p in self.names for p in parents):
            clash = name if name in self.folders else next(p for p in parents if p in self.names)
            raise _refuse("source_unreadable", f"{self.archive}: {clash} is both a file and a folder; refused")
        self.names.add(name)
        self.folders.update(parents)
        self.total += size
        if self.capped and self.total > self.limits.archive_max_bytes:
            raise _refuse("too_large", self.too_big)


class _Bounded:
    """Reads a member at most up to its declared size (a zip may lie about
    sizes), turning a library's error into a SourceError."""

    def __init__(self, fh: IO[bytes], declared: int, archive: str, name: str):
        self.fh, self.left, self.archive, self.name = fh, declared, archive, name

    def __call__(self, n: int) -> bytes:
        n = min(n, self.left + 1)
        try:
            data = self.fh.read(n)
        except Exception as exc:  # noqa: BLE001 - translated below; anything else is re-raised
            error = _library_error(self.archive, exc)
            if error is None:
                raise
            raise error from None
        if len(data) > self.left:
            raise _refuse("too_large", f"{self.name} in {self.archive} is larger than it declares")
        self.left -= len(data)
        return data


class _CappedReads:
    """A plain tar as tarfile reads it, refusing any single read larger than
    a reader of this module ever asks for: tarfile reads a long-name or PAX
    header whole, and one of gigabytes must not land in memory."""

    def __init__(self, raw: BinaryIO, walk: _Walk):
        self.raw, self.archive = raw, walk.archive
        self.cap = max(walk.limits.max_header_bytes, walk.limits.max_small_file_bytes) + 8 * 1024**2

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self.cap:
            raise _refuse("too_large", f"{self.archive} holds a member header larger than {self.cap} bytes; refused")
        return self.raw.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


class _Counted:
    """The compressed file as gzip reads it: counts the bytes read."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.count = raw, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data


class _Gunzipped:
    """A .tar.gz decompressed as tarfile reads it. The bomb check is on what
    was actually decompressed against what was actually read from the file,
    at every read: a 115 MB archive of real weights (ratio ~1.1) passes, a
    gigabyte of zeros in a megabyte is stopped before it is all unpacked."""

    def __init__(self, raw: BinaryIO, walk: _Walk):
        self.counted = _Counted(raw)
        self.gz = gzip.GzipFile(fileobj=cast(BinaryIO, self.counted), mode="rb")
        self.archive, self.limits, self.too_big = walk.archive, walk.limits, walk.too_big
        self.unpacked = 0

    def read(self, n: int = -1) -> bytes:
        data = self.gz.read(n)
        self.unpacked += len(data)
        limits = self.limits
        if self.unpacked > BOMB_FLOOR and self.unpacked > limits.archive_max_ratio * max(self.counted.count, 1):
            raise _refuse("too_large", f"{self.archive} unpacked {self.unpacked} bytes from the first "
                          f"{self.counted.count}: a compression ratio over {limits.archive_max_ratio}, "
                          "refused as a zip bomb")
        if self.unpacked > limits.archive_max_bytes + 1024**2:  # the tar's own headers and padding beyond
            raise _refuse("too_large", self.too_big)
        return data


_TOO_BIG_GZ = ("{archive} unpacks to more than {cap} bytes, and a .tar.gz is read from start to end, weights "
               "included: pack the model as .tar or .zip (read in place), or inspect its folder")


def _zip_directory(fh: BinaryIO, size: int) -> tuple[int, int] | None:
    """(entries, bytes) of the central directory as the zip's end record
    declares them, read before zipfile parses the whole directory into
    memory (a few million entries would take gigabytes). None when there is
    no end record."""
    tail = min(size, 65_535 + 22)
    fh.seek(size - tail)
    data = fh.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(data):
        return None
    count, cd_size = struct.unpack("<HI", data[at + 10:at + 16])
    locator = at - 20
    if (count == 0xFFFF or cd_size == 0xFFFF_FFFF) and locator >= 0 and data[locator:locator + 4] == b"PK\x06\x07":
        (offset,) = struct.unpack("<Q", data[locator + 8:locator + 16])
        fh.seek(offset)
        record = fh.read(56)
        if record[:4] == b"PK\x06\x06" and len(record) == 56:
            count, cd_size = struct.unpack("<QQ", record[32:48])
    return count, cd_size


#: central directory bytes allowed per member (46 fixed, the rest name, extra field, comment)
ZIP_DIRECTORY_BYTES_PER_MEMBER = 1024


def _zip_members(path: Path, walk: _Walk, archive_size: int) -> Iterator[Member]:
    limits, name_of = walk.limits, path.name
    with open(path, "rb") as raw:
        directory = _zip_directory(raw, archive_size)
        if directory is not None:
            count, cd_size = directory
            if count > limits.archive_max_files:
                raise _refuse("too_large", f"{name_of} has more than {limits.archive_max_files} members")
            if cd_size > limits.archive_max_files * ZIP_DIRECTORY_BYTES_PER_MEMBER + 1024**2:
                raise _refuse("too_large", f"{name_of} has a directory of {cd_size} bytes, more than "
                              f"{limits.archive_max_files} members need; refused")
        raw.seek(0)
        with zipfile.ZipFile(raw) as zf:
            infos = zf.infolist()
            # Read in place: only what a consumer asks for is decompressed, so the declared
            # total is bounded by the ratio, not by a cap on bytes (unless the walk is capped).
            declared = sum(i.file_size for i in infos)
            if declared > BOMB_FLOOR and declared > limits.archive_max_ratio * max(archive_size, 1):
                raise _refuse("too_large", f"{name_of} would unpack to {declared} bytes from {archive_size}: "
                              f"a compression ratio over {limits.archive_max_ratio}, refused as a zip bomb")
            for info in infos:
                walk.entry()
                name = safe_member_name(info.filename, name_of)
                # Unix file-type bits, when the archiver wrote any: zero from Windows archivers
                # and from Python's writestr, whose members are regular files all the same.
                ftype = stat.S_IFMT(info.external_attr >> 16)
                if info.is_dir() or ftype == stat.S_IFDIR or not name or ignored_member(name):
                    continue
                if ftype == stat.S_IFLNK:
                    raise _refuse("source_unreadable", f"{name_of} holds a symbolic link ({name}); refused")
                if ftype and ftype != stat.S_IFREG:
                    raise _refuse("source_unreadable", f"{name_of} holds a special file ({name}); refused")
                if info.flag_bits & 0x1:
                    raise _refuse("source_unreadable", f"{name_of}: {name} is encrypted; encrypted archives "
                                  "are not read (pack the model without a password)")
                if info.file_size > MEMBER_BOMB_FLOOR and info.compress_size and \
                        info.file_size > limits.archive_max_ratio * info.compress_size:
                    raise _refuse("too_large", f"{name} in {name_of} compresses {info.file_size}:"
                                  f"{info.compress_size}, refused as a zip bomb")
                walk.file(name, info.file_size)
                with zf.open(info) as fh:
                    yield Member(name, info.file_size, _Bounded(fh, info.file_size, name_of, name))


def _tar_members(path: Path, walk: _Walk, archive_size: int, gz: bool) -> Iterator[Member]:
    name_of = path.name
    if not gz and not tarfile.is_tarfile(path):
        raise _refuse("source_unreadable", f"{name_of} is not a tar archive")
    with open(path, "rb") as raw:
        # A plain tar is opened seekable: skipping a member's weights is a seek.
        # A .tar.gz can only be streamed, through the counting decompressor.
        stream = _Gunzipped(raw, walk) if gz else _CappedReads(raw, walk)
        with tarfile.open(fileobj=stream, mode="r|" if gz else "r:") as tf:  # type: ignore[call-overload]
            for member in tf:
                walk.entry()
                name = safe_member_name(member.name, name_of)
                if member.isdir() or not name or ignored_member(name):
                    continue
                if member.issym() or member.islnk():
                    target = member.linkname
                    try:
                        safe_member_name(target, name_of)
                        outside = target.startswith("/")
                    except SourceError:
                        outside = True
                    if outside:
                        raise _refuse("source_unreadable", f"{name_of}: link {name} points outside the archive; "
                                      "refused")
                    continue  # regular files only: a link inside the archive is skipped, never followed
                if not member.isreg():
                    raise _refuse("source_unreadable",
                                  f"{name_of} holds a device, FIFO or other special file ({name}); refused")
                if not gz and not member.issparse() and member.offset_data + member.size > archive_size:
                    raise _refuse("source_unreadable", f"{name_of} is truncated: {name} declares "
                                  f"{member.size} bytes that the file does not hold")
                walk.file(name, member.size)
                body = tf.extractfile(member)
                if body is None:
                    continue
                yield Member(name, member.size, _Bounded(body, member.size, name_of, name))


def iter_members(path: Path, limits: InspectLimits, *, unpack: bool = False) -> Iterator[Member]:
    """The archive's regular files, in archive order, each once, every
    refusal applied. `unpack=True` (Prepare, which writes the members out)
    caps the declared total at `archive_max_bytes` for every kind; a .tar.gz
    is capped always, since reading it at all means decompressing it whole.
    A SourceError on anything unsafe or broken."""
    lower = path.name.lower()
    try:
        archive_size = path.stat().st_size
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except OSError as exc:
        raise _refuse("source_unreadable", f"cannot read {path.name}: {exc.strerror or exc}") from None
    # A tar is compressed or not by its content, not its name: browsers unpack a downloaded
    # .tar.gz and keep the name, and a gzipped tar is sometimes called .tar.
    gz = not lower.endswith(".zip") and magic == GZIP_MAGIC
    if gz and not unpack:
        too_big = _TOO_BIG_GZ.format(archive=path.name, cap=limits.archive_max_bytes)
    else:
        too_big = f"{path.name} unpacks to more than {limits.archive_max_bytes} bytes"
    walk = _Walk(path, limits, capped=unpack or gz, too_big=too_big)
    if lower.endswith(".zip"):
        if not zipfile.is_zipfile(path):
            raise _refuse("source_unreadable", f"{path.name} is not a zip archive")
        members = _zip_members(path, walk, archive_size)
    else:
        members = _tar_members(path, walk, archive_size, gz)
    while True:
        try:
            member = next(members)
        except StopIteration:
            break
        except Exception as exc:  # noqa: BLE001 - translated below; anything else is re-raised
            error = _library_error(path.name, exc)
            if error is None:
                raise
            raise error from None
        yield member
    if not walk.names:
        raise _refuse("source_unreadable", f"{path.name} holds no files")


def looks_like_archive(path: Path) -> bool:
    """Whether the file is an archive of a kind this module reads, by its
    content (a cheap test before an upload is kept): a zip for a `.zip`; a
    tar, gzipped or not, for the other names."""
    if path.name.lower().endswith(".zip"):
        return zipfile.is_zipfile(path)
    with open(path, "rb") as fh:
        if fh.read(2) == GZIP_MAGIC:
            return True
    return tarfile.is_tarfile(path)


def archive_listing(path: Path, limits: InspectLimits, *, unpack: bool = False) -> tuple[dict[str, int], str]:
    """Member sizes by name relative to the model folder, and the prefix
    that was stripped (an archive packed as `name/config.json`)."""
    sizes = {m.name: m.size for m in iter_members(path, limits, unpack=unpack)}
    prefix = model_prefix(sizes)
    return {p[len(prefix):]: s for p, s in sizes.items()}, prefix


def open_archive(path: Path, limits: InspectLimits) -> SnapshotSource:
    """The archive as a source for the inspection, read in one pass: the
    small files whole and each safetensors header are kept, nothing else."""
    sizes: dict[str, int] = {}
    contents: dict[str, bytes] = {}
    kept = 0
    # Headers and small files are held in memory: many shards of 100 MB headers, or many
    # large .json files, must not add up to gigabytes.
    kept_cap = 2 * (limits.max_header_bytes + limits.max_small_file_bytes)
    for member in iter_members(path, limits):
        name, size = member.name, member.size
        sizes[name] = size
        if name.endswith(".safetensors"):
            head = member.read(8)
            if len(head) == 8:
                n = struct.unpack("<Q", head)[0]
                if n <= min(limits.max_header_bytes, size - 8):
                    head += member.read(n)
            contents[name] = head
        elif wants_whole(name) and size <= limits.max_small_file_bytes:
            data = member.read(size + 1)
            if len(data) != size:
                raise _refuse("source_unreadable", f"{name} in {path.name} is not the size it declares")
            contents[name] = data
        kept += len(contents.get(name, b""))
        if kept > kept_cap:
            raise _refuse("too_large", f"{path.name}: its headers and small files exceed {kept_cap} bytes in all, "
                          "the most an inspection holds in memory")
    prefix = model_prefix(sizes)
    if prefix:
        sizes = {p[len(prefix):]: s for p, s in sizes.items()}
        contents = {p[len(prefix):]: c for p, c in contents.items()}
    return SnapshotSource(str(path), sizes, contents)


__all__ = ["Member", "iter_members", "archive_listing", "open_archive", "model_prefix", "ignored_member",
           "looks_like_archive", "NESTED_SUFFIXES"]
