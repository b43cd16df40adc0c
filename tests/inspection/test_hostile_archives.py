"""Archives (.zip, .tar, .tar.gz): a model inside is inspected like a folder
(read in one pass, weights never kept); anything unsafe or broken is a
SourceError (the command's exit 2), never an extraction or a crash."""
from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from inspect_support import check, folder, llama_cfg, real_safetensors, run
from modelfactory import evil_pickle

from cfm.inspection import InspectLimits, InspectOptions, SourceError, inspect

TEN_MB = 10 * 1024 * 1024


def _model_files(tmp_path) -> dict[str, bytes]:
    path = folder(tmp_path / "src", llama_cfg())
    real_safetensors(path / "model.safetensors")
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def make_zip(dest: Path, files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(dest, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return dest


def make_tar(dest: Path, files: dict[str, bytes], gz=False, extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(dest, "w:gz" if gz else "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return dest


def _options(limits: InspectLimits) -> InspectOptions:
    return InspectOptions(limits=limits)


def refused(path, words=(), limits=None) -> str:
    with pytest.raises(SourceError) as exc:
        inspect(str(path), options=None if limits is None else _options(limits))
    msg = exc.value.message
    assert "\n" not in msg and Path(path).name in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


# -- good archives ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz", "tgz", "ZIP"])
def test_model_archives_are_inspected_like_folders(tmp_path, kind):
    files = _model_files(tmp_path)
    dest = tmp_path / f"model.{kind}"
    if kind.lower() == "zip":
        make_zip(dest, files)
    else:
        make_tar(dest, files, gz=kind in ("tar.gz", "tgz"))
    d = run(dest)
    assert d["deployable"] is True and d["parameters"] == 36 and d["source"] == str(dest.resolve())
    assert d["files"]["count"] == 3


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_model_in_a_single_top_folder_is_found(tmp_path, kind):
    files = {f"Llama-3-8B/{k}": v for k, v in _model_files(tmp_path).items()}
    dest = tmp_path / f"model.{kind}"
    make_zip(dest, files) if kind == "zip" else make_tar(dest, files, gz=True)
    d = run(dest)
    assert check(d, "config_present")["status"] == "pass" and d["deployable"] is True


def test_macos_resource_forks_do_not_hide_the_top_folder(tmp_path):
    files = {f"model/{k}": v for k, v in _model_files(tmp_path).items()}
    files.update({"__MACOSX/model/._config.json": b"\x00\x05\x16\x07", "model/.DS_Store": b"\x00\x00\x00\x01Bud1"})
    d = run(make_zip(tmp_path / "mac.zip", files))
    assert d["deployable"] is True


def test_weights_in_an_archive_are_not_kept(tmp_path):
    """Only the header of a safetensors member is read: a 10 MB model yields a few KB."""
    import numpy as np
    from safetensors.numpy import save_file
    src = folder(tmp_path / "src", llama_cfg())
    save_file({"model.embed_tokens.weight": np.ones((TEN_MB // 2,), dtype=np.float16)}, str(src / "model.safetensors"),
              metadata={"format": "pt"})
    files = {p.name: p.read_bytes() for p in src.iterdir()}
    d = run(make_tar(tmp_path / "m.tar", files))
    assert d["parameters"] == TEN_MB // 2 and d["files"]["bytes_read"] < 100_000


def test_pickle_in_an_archive_is_never_loaded(tmp_path):
    marker = tmp_path / "pwned"
    files = _model_files(tmp_path)
    del files["model.safetensors"]
    files["pytorch_model.bin"] = evil_pickle(marker)
    d = run(make_zip(tmp_path / "m.zip", files))
    assert check(d, "weights_format")["status"] == "warn" and not marker.exists()


# -- paths that point out ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../evil.json", "a/../../evil.json", "/etc/evil.json", "..\\..\\evil.json",
                                  "C:/evil.json", "a/b/../../../evil"])
def test_zip_member_pointing_out_is_refused(tmp_path, name):
    files = _model_files(tmp_path)
    files[name] = b"x"
    refused(make_zip(tmp_path / "m.zip", files))


@pytest.mark.parametrize("name", ["../evil.json", "/etc/evil.json", "model/../../evil.json"])
@pytest.mark.parametrize("gz", [False, True])
def test_tar_member_pointing_out_is_refused(tmp_path, name, gz):
    files = _model_files(tmp_path)
    files[name] = b"x"
    refused(make_tar(tmp_path / ("m.tar.gz" if gz else "m.tar"), files, gz=gz))


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
@pytest.mark.parametrize("target", ["/etc/passwd", "../../etc/passwd", "../outside"])
def test_tar_links_pointing_out_are_refused(tmp_path, kind, target):
    link = tarfile.TarInfo("config.json")
    link.type, link.linkname = kind, target
    files = _model_files(tmp_path)
    del files["config.json"]
    msg = refused(make_tar(tmp_path / "m.tar", files, extra=[link]))
    assert "link" in msg


def test_tar_link_inside_the_archive_is_ignored_not_followed(tmp_path):
    link = tarfile.TarInfo("tokenizer_copy.json")
    link.type, link.linkname = tarfile.SYMTYPE, "tokenizer.json"
    d = run(make_tar(tmp_path / "m.tar", _model_files(tmp_path), extra=[link]))
    assert d["deployable"] is True and d["files"]["count"] == 3


def test_zip_symlink_is_refused(tmp_path):
    dest = tmp_path / "m.zip"
    with zipfile.ZipFile(dest, "w") as zf:
        for name, data in _model_files(tmp_path).items():
            zf.writestr(name, data)
        info = zipfile.ZipInfo("evil_link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    refused(dest, ["symbolic link"])


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tar_of_a_device_or_fifo_is_refused(tmp_path, kind):
    dev = tarfile.TarInfo("model.safetensors")
    dev.type, dev.devmajor, dev.devminor = kind, 1, 5  # /dev/zero
    files = _model_files(tmp_path)
    del files["model.safetensors"]
    refused(make_tar(tmp_path / "m.tar", files, extra=[dev]), ["special file"])


# -- bombs -------------------------------------------------------------------------------------------------------
def test_zip_bomb_by_ratio_is_refused(tmp_path):
    files = _model_files(tmp_path)
    files["pytorch_model.bin"] = b"\0" * TEN_MB  # compresses ~1000:1
    refused(make_zip(tmp_path / "bomb.zip", files), ["zip bomb"])


def test_zip_bomb_by_declared_size_is_refused(tmp_path):
    files = _model_files(tmp_path)
    files["weights.bin"] = b"x" * 100
    dest = make_zip(tmp_path / "bomb.zip", files, zipfile.ZIP_STORED)
    raw = bytearray(dest.read_bytes())
    # Declare 4 GB uncompressed for every member in the central directory.
    pos = raw.find(b"PK\x01\x02")
    while pos != -1:
        raw[pos + 24:pos + 28] = struct.pack("<I", 0xFFFF_FFF0)
        pos = raw.find(b"PK\x01\x02", pos + 4)
    dest.write_bytes(bytes(raw))
    refused(dest, ["bytes"])


def test_zip_bomb_by_nesting_is_refused(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", {"a": b"\0" * 1000})
    files = _model_files(tmp_path)
    files["weights.zip"] = inner.read_bytes()
    refused(make_zip(tmp_path / "outer.zip", files), ["nested"])


@pytest.mark.parametrize("inner", ["x.tar.gz", "x.tar", "x.gz", "x.7z"])
def test_nested_archives_in_tar_are_refused(tmp_path, inner):
    files = _model_files(tmp_path)
    files[inner] = b"\x1f\x8b" + b"\0" * 100
    refused(make_tar(tmp_path / "outer.tar.gz", files, gz=True), ["nested"])


def test_tar_gz_bomb_is_refused_before_it_is_all_unpacked(tmp_path):
    dest = tmp_path / "bomb.tar.gz"
    with gzip.open(dest, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tf:
        info = tarfile.TarInfo("weights.bin")
        info.size = 96 * 1024 * 1024
        tf.addfile(info, _Zeros(info.size))
        for name, data in _model_files(tmp_path).items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    assert dest.stat().st_size < 1_000_000
    refused(dest, ["zip bomb"])


class _Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


def test_tar_declaring_more_than_the_cap_is_refused_unread(tmp_path):
    dest = tmp_path / "big.tar"
    files = _model_files(tmp_path)
    make_tar(dest, files)
    raw = bytearray(dest.read_bytes())
    # A first member that declares 8 GB (octal size field at offset 124) in a small file.
    raw[124:136] = b"%011o\0" % (8 * 1024**3)
    header = raw[:512]
    header[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(header)
    dest.write_bytes(bytes(raw))
    refused(dest)


def test_too_many_members_is_refused(tmp_path):
    files = _model_files(tmp_path)
    files.update({f"f{i}.txt": b"x" for i in range(30)})
    refused(make_zip(tmp_path / "many.zip", files), ["more than 20"], limits=InspectLimits(archive_max_files=20))
    refused(make_tar(tmp_path / "many.tar", files), ["more than 20"], limits=InspectLimits(archive_max_files=20))


# -- broken archives and non-archives ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, content", [
    ("random.zip", os.urandom(4096)), ("random.tar", os.urandom(4096)), ("random.tar.gz", os.urandom(4096)),
    ("empty.zip", b""), ("empty.tar.gz", b""), ("text.tar", b"hello world\n" * 100),
    ("gzip_not_tar.tar.gz", gzip.compress(b"not a tar at all" * 100)),
])
def test_corrupt_archives_are_refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    refused(path)


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
@pytest.mark.parametrize("keep", [0.3, 0.7, 0.95])
def test_truncated_archives_are_refused(tmp_path, kind, keep):
    files = _model_files(tmp_path)
    files["pad.txt"] = os.urandom(20_000)
    dest = tmp_path / f"m.{kind}"
    make_zip(dest, files) if kind == "zip" else make_tar(dest, files, gz=kind == "tar.gz")
    raw = dest.read_bytes()
    dest.write_bytes(raw[: int(len(raw) * keep)])
    try:
        d = run(dest)
    except SourceError as exc:
        assert "\n" not in exc.message
    else:  # a tar cut after the model's files can still be read: then the report must be sound
        assert d["files"]["count"] >= 1


def test_encrypted_zip_is_refused(tmp_path):
    dest = make_zip(tmp_path / "enc.zip", _model_files(tmp_path), zipfile.ZIP_STORED)
    raw = bytearray(dest.read_bytes())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = raw.find(sig)
        while pos != -1:
            raw[pos + flag_at] |= 1
            pos = raw.find(sig, pos + 4)
    dest.write_bytes(bytes(raw))
    refused(dest)


def test_empty_archive_is_refused(tmp_path):
    refused(make_zip(tmp_path / "empty.zip", {}), ["no files"])
    refused(make_tar(tmp_path / "empty.tar", {}))


@pytest.mark.parametrize("name", ["model.safetensors", "notes.txt", "model.gguf", "x.tar.bz2", "x.7z"])
def test_a_file_that_is_not_an_archive_is_refused(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\0" * 100)
    refused(path, ["not an archive"])


def test_missing_path_is_refused(tmp_path):
    refused(tmp_path / "nothing.zip", ["no such file"])
    with pytest.raises(SourceError):
        inspect(str(tmp_path / "no" / "such" / "folder"))


def test_hostile_header_inside_an_archive_is_a_failed_check(tmp_path):
    files = _model_files(tmp_path)
    files["model.safetensors"] = struct.pack("<Q", 2**63) + b"{}"
    d = run(make_zip(tmp_path / "m.zip", files))
    assert check(d, "safetensors_header")["status"] == "fail"
    files["model.safetensors"] = struct.pack("<Q", 1_000) + b"{" + b" " * 999
    d = run(make_tar(tmp_path / "m.tar.gz", files, gz=True))
    assert check(d, "safetensors_header")["status"] == "fail"


def test_headers_and_small_files_kept_in_memory_are_capped(tmp_path):
    files = _model_files(tmp_path)
    files.update({f"extra{i}.json": b"{}" + b" " * 3000 for i in range(10)})
    limits = InspectLimits(max_header_bytes=4096, max_small_file_bytes=4096)
    refused(make_tar(tmp_path / "m.tar", files), ["in memory"], limits=limits)
    assert run(make_tar(tmp_path / "ok.tar", _model_files(tmp_path)), limits=limits)["deployable"] is True


def test_tar_made_from_inside_the_folder_with_dot_slash_names(tmp_path):
    files = {f"./{k}": v for k, v in _model_files(tmp_path).items()}
    dot = tarfile.TarInfo(".")
    dot.type = tarfile.DIRTYPE
    d = run(make_tar(tmp_path / "m.tar.gz", files, gz=True, extra=[dot]))
    assert d["deployable"] is True and d["files"]["count"] == 3


def test_zip_with_windows_separators(tmp_path):
    files = {f"model\\{k}": v for k, v in _model_files(tmp_path).items()}
    assert run(make_zip(tmp_path / "win.zip", files))["deployable"] is True


@pytest.mark.parametrize("special", ["/dev/null", "/dev/zero", "fifo"])
def test_a_device_or_fifo_as_the_source_is_refused(tmp_path, special):
    if special == "fifo":
        special = str(tmp_path / "model.zip")
        os.mkfifo(special)
    with pytest.raises(SourceError) as exc:
        inspect(special)
    assert "\n" not in exc.value.message


def test_tar_member_with_a_negative_size_is_refused(tmp_path):
    dest = tmp_path / "neg.tar"
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in _model_files(tmp_path).items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        neg = tarfile.TarInfo("weights.bin")
        neg.size = -(2**40)  # GNU base-256 allows it
        tf.fileobj.write(neg.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
    refused(dest, ["negative size"])


def _sparse_tar(folder: Path, dest: Path) -> Path:
    """A plain tar of `folder` whose holes stay holes (copied by SEEK_DATA /
    SEEK_HOLE): a 70B model tars into a 140 GB file that takes no room."""
    with open(dest, "wb") as out:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(f"{folder.name}/{path.relative_to(folder).as_posix()}")
            info.size = path.stat().st_size
            out.write(info.tobuf(format=tarfile.PAX_FORMAT))
            start = out.tell()
            with open(path, "rb") as src:
                fd, pos = src.fileno(), 0
                while pos < info.size:
                    try:
                        pos = os.lseek(fd, pos, os.SEEK_DATA)
                    except OSError:  # ENXIO: only a hole is left
                        break
                    end = os.lseek(fd, pos, os.SEEK_HOLE)
                    src.seek(pos)
                    out.seek(start + pos)
                    out.write(src.read(end - pos))
                    pos = end
            out.seek(start + -(-info.size // 512) * 512)
        out.write(b"\0" * 1024)
        out.truncate()
    return dest


def test_a_plain_tar_of_a_70b_model_is_read_in_place_headers_only(tmp_path):
    from modelfactory import LLAMA3_70B, make_model

    dest = _sparse_tar(make_model(tmp_path / "llama-70b", LLAMA3_70B, shards=30), tmp_path / "llama-70b.tar")
    assert dest.stat().st_size > 140e9 and dest.stat().st_blocks * 512 < 50e6
    report = inspect(str(dest))
    assert report.configuration == "large" and report.parameters_exact and report.parameters > 70e9
    assert report.deployable, [c for c in report.checks if c.status == "fail"]


def test_a_tar_gz_over_the_cap_says_to_pack_as_tar_or_zip(tmp_path):
    files = _model_files(tmp_path)
    files["model-extra.bin"] = os.urandom(3 * 1024 * 1024)  # does not compress: no bomb, only big
    message = refused(make_tar(tmp_path / "big.tar.gz", files, gz=True), [".tar or .zip"],
                      limits=InspectLimits(archive_max_bytes=2 * 1024 * 1024))
    assert "folder" in message
    plain = make_tar(tmp_path / "big.tar", files)  # the same model as a plain tar is read in place
    assert inspect(str(plain), options=_options(InspectLimits(archive_max_bytes=2 * 1024 * 1024))).model_type


def test_a_gnu_sparse_tar_of_a_big_model_is_read_in_place(tmp_path):
    """`tar -S` stores a sparse model's holes as sparse members: a 16 GB model
    in a few hundred kilobytes, which is no bomb when it is read in place."""
    import shutil
    import subprocess

    from modelfactory import LLAMA3_8B, make_model

    if shutil.which("tar") is None:
        pytest.fail("GNU tar is needed to build the sparse archive")
    folder = make_model(tmp_path / "llama-8b", LLAMA3_8B, shards=2)
    dest = tmp_path / "llama-8b.tar"
    subprocess.run(["tar", "-S", "-cf", str(dest), "-C", str(tmp_path), "llama-8b"], check=True)
    assert dest.stat().st_size < 50e6
    report = inspect(str(dest))
    assert report.configuration == "small" and report.parameters_exact and report.deployable
    assert report.parameters == inspect(str(folder)).parameters
