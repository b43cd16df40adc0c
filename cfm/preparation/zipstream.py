"""A prepared folder as a zip, streamed: the archive is written as it is
sent, a chunk at a time, never to a temporary file and never whole in
memory (a prepared 70B model is 140 GB).

`zipfile` writes to an object with only `write` (and `flush`): without
`seek` it puts each member's sizes and CRC in a data descriptor after the
member's bytes, so nothing is patched afterwards. Members are stored, not
deflated: safetensors do not shrink, and the CPU stays free.
"""
from __future__ import annotations

import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

CHUNK = 1024 * 1024


class _Pipe:
    """The zip's output: what zipfile writes collects here until the generator takes it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0
        self.held = 0

    def write(self, b: bytes, /) -> int:
        data = bytes(b)
        self.parts.append(data)
        self.offset += len(data)
        self.held += len(data)
        return len(data)

    def tell(self) -> int:  # zipfile asks where it is, to write the central directory's offsets
        return self.offset

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        self.held = 0
        return out


#: (name in the archive, size in bytes, a function that opens the file for reading)
Member = tuple[str, int, Callable[[], Any]]


def zip_stream(members: Iterable[Member], *, root: str = "") -> Iterator[bytes]:
    """The zip of `members`, each under `root/`, in chunks of about CHUNK bytes."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, size, opener in members:
            info = zipfile.ZipInfo(f"{root.strip('/')}/{name}" if root else name)
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = size
            info.date_time = time.localtime()[:6]
            # The size given up front lets zipfile choose zip64 for a member of 4 GB or more before writing it.
            with opener() as source, archive.open(info, mode="w") as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    if pipe.held >= CHUNK:
                        yield pipe.take()
            if pipe.parts:
                yield pipe.take()
    if pipe.parts:  # the central directory, written on close
        yield pipe.take()
