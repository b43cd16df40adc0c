"""One source layer under the inspection and Prepare: archives as users
make them (zip, tar, tar.gz, from the command line and from Python, on
macOS and Windows, with or without a top folder) give the same files to
both; hostile ones are refused by both with a clear message, and nothing is
ever written outside the work folder. Prepare reads the Hub through the
inspection's source: the same timeout, retries and error codes."""
from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from cfm.inspection import InspectLimits, SourceError, inspect
from cfm.preparation import download as dl
from cfm.preparation.errors import PrepareError
from cfm.preparation.pipeline import PrepareOptions, SourceSpec, prepare
from cfm.preparation.storage import LocalStorage, sha256_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inspection"))
from inspect_support import folder, llama_cfg, real_safetensors  # noqa: E402

LIMITS = InspectLimits()


def _model(tmp_path: Path) -> Path:
    path = folder(tmp_path / "model", llama_cfg())
    real_safetensors(path / "model.safetensors")
    return path


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def _tar(dest: Path, members: list[tuple[str, bytes]], mode="w") -> Path:
    with tarfile.open(dest, mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return dest


def _zip(dest: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return dest


def _both_see(archive: Path, tmp_path: Path) -> dict[str, int]:
    """What Prepare lists and extracts, checked against what the inspection read."""
    report = inspect(str(archive))
    assert report.deployable, [c for c in report.checks if c.status == "fail"]
    listing, prefix = dl.archive_listing(archive, LIMITS)
    wanted = dl.needed_files(listing)
    assert "config.json" in wanted and "model.safetensors" in wanted
    dest = tmp_path / "work" / archive.name
    dl.archive_extract(archive, prefix, wanted, dest, dl.DownloadProgress(), LIMITS)
    got = {p.relative_to(dest).as_posix(): p.stat().st_size for p in dest.rglob("*") if p.is_file()}
    assert got == wanted
    return got


def _refused_by_both(archive: Path, *words: str, limits: InspectLimits = LIMITS) -> None:
    from cfm.inspection import InspectOptions

    with pytest.raises(SourceError) as seen:
        inspect(str(archive), options=InspectOptions(limits=limits))
    with pytest.raises(PrepareError) as prep:
        dl.archive_listing(archive, limits)
    for message in (seen.value.message, prep.value.message):
        assert "\n" not in message and archive.name in message, message
        for w in words:
            assert w in message, message
    assert prep.value.code == "source_unavailable"


# -- the three defects of the issue --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_an_archive_with_two_members_of_the_same_name_is_refused_by_both(tmp_path, kind):
    files = _files(_model(tmp_path))
    other = b'{"model_type": "gpt2"}'
    members = [*files.items(), ("config.json", other)]
    dest = tmp_path / f"twice.{kind}"
    _zip(dest, members) if kind == "zip" else _tar(dest, members, "w:gz" if kind == "tar.gz" else "w")
    _refused_by_both(dest, "config.json twice")


def test_the_same_name_spelled_two_ways_is_the_same_member(tmp_path):
    files = _files(_model(tmp_path))
    dest = _tar(tmp_path / "dots.tar", [*files.items(), ("./config.json", files["config.json"])])
    _refused_by_both(dest, "twice")


def test_a_file_that_is_also_a_folder_is_refused(tmp_path):
    files = _files(_model(tmp_path))
    dest = _tar(tmp_path / "clash.tar", [*files.items(), ("tokenizer.json/x", b"{}")])
    _refused_by_both(dest, "both a file and a folder")


def test_a_zip_without_file_type_bits_is_prepared_like_it_is_inspected(tmp_path):
    """`ZipFile.writestr` writes 0o600 without S_IFREG: a regular file all the same."""
    dest = _zip(tmp_path / "writestr.zip", list(_files(_model(tmp_path)).items()))
    with zipfile.ZipFile(dest) as zf:
        assert all(stat.S_IFMT(i.external_attr >> 16) == 0 for i in zf.infolist())
    assert set(_both_see(dest, tmp_path)) == {"config.json", "tokenizer.json", "model.safetensors"}


def test_a_tar_gz_of_real_weights_over_64_mib_is_no_zip_bomb(tmp_path):
    """Real weights barely compress: 70 MiB of them in a .tar.gz (ratio ~1)."""
    path = folder(tmp_path / "big", llama_cfg())
    rng = np.random.default_rng(0)
    save_file({"model.embed_tokens.weight": rng.standard_normal(35 * 1024**2).astype(np.float16)},
              str(path / "model.safetensors"), metadata={"format": "pt"})
    dest = tmp_path / "big.tar.gz"
    with tarfile.open(dest, "w:gz", compresslevel=1) as tf:
        tf.add(path, arcname="big")
    assert dest.stat().st_size > 64 * 1024**2 * 0.8
    report = inspect(str(dest))
    assert report.parameters == 35 * 1024**2 and report.deployable
    listing, prefix = dl.archive_listing(dest, LIMITS)
    assert prefix == "big/" and listing["model.safetensors"] == (path / "model.safetensors").stat().st_size


# -- archives as users make them -----------------------------------------------------------------------------
def _cli(args: list[str], cwd: Path) -> None:
    if shutil.which(args[0]) is None:
        pytest.fail(f"{args[0]} is needed to build the archive as users do")
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


@pytest.mark.parametrize("how", ["zip -r", "zip inside", "tar cf", "tar czf", "tar czf inside", "tar -S"])
def test_archives_made_on_the_command_line(tmp_path, how):
    model = _model(tmp_path)
    parent = model.parent
    if how == "zip -r":
        _cli(["zip", "-qr", str(tmp_path / "m.zip"), "model"], parent)
        dest = tmp_path / "m.zip"
    elif how == "zip inside":
        _cli(["zip", "-qr", str(tmp_path / "m.zip"), "."], model)
        dest = tmp_path / "m.zip"
    elif how == "tar cf":
        _cli(["tar", "cf", str(tmp_path / "m.tar"), "model"], parent)
        dest = tmp_path / "m.tar"
    elif how == "tar czf":
        _cli(["tar", "czf", str(tmp_path / "m.tar.gz"), "model"], parent)
        dest = tmp_path / "m.tar.gz"
    elif how == "tar czf inside":
        _cli(["tar", "czf", str(tmp_path / "m.tgz"), "."], model)
        dest = tmp_path / "m.tgz"
    else:
        _cli(["tar", "-S", "-cf", str(tmp_path / "m.tar"), "model"], parent)
        dest = tmp_path / "m.tar"
    _both_see(dest, tmp_path)


@pytest.mark.parametrize("how", ["shutil zip", "shutil gztar", "shutil tar", "zipfile write"])
def test_archives_made_from_python(tmp_path, how):
    model = _model(tmp_path)
    if how == "zipfile write":
        dest = tmp_path / "m.zip"
        with zipfile.ZipFile(dest, "w") as zf:
            for p in model.iterdir():
                zf.write(p, p.name)
    else:
        fmt = how.split()[1]
        dest = Path(shutil.make_archive(str(tmp_path / "m"), fmt, root_dir=model.parent, base_dir="model"))
    _both_see(dest, tmp_path)


def test_an_archive_made_on_macos_with_its_litter(tmp_path):
    """Finder's zip adds `__MACOSX/` and `._*` AppleDouble files; macOS tar adds `._*` beside each file."""
    files = _files(_model(tmp_path))
    apple = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "
    zipped = [(f"model/{k}", v) for k, v in files.items()]
    zipped += [(f"__MACOSX/model/._{k}", apple) for k in files] + [("model/.DS_Store", b"\0\0\0\1Bud1")]
    _both_see(_zip(tmp_path / "finder.zip", zipped), tmp_path)
    tarred = [(f"./._{k}", apple) for k in files] + [(f"./{k}", v) for k, v in files.items()]
    _both_see(_tar(tmp_path / "bsdtar.tar.gz", tarred, "w:gz"), tmp_path)


def test_an_archive_made_on_windows_with_backslashes(tmp_path):
    files = _files(_model(tmp_path))
    dest = tmp_path / "win.zip"
    with zipfile.ZipFile(dest, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(f"model\\{name}")
            info.create_system = 0  # MS-DOS: no Unix bits at all
            info.external_attr = 0x20  # FILE_ATTRIBUTE_ARCHIVE
            zf.writestr(info, data)
        thumbs = zipfile.ZipInfo("model\\Thumbs.db")
        zf.writestr(thumbs, b"\0" * 10)
    _both_see(dest, tmp_path)


def test_a_zip64_archive_is_read(tmp_path):
    files = _files(_model(tmp_path))
    dest = tmp_path / "z64.zip"
    with zipfile.ZipFile(dest, "w", allowZip64=True) as zf:
        for name, data in files.items():
            with zf.open(name, "w", force_zip64=True) as fh:
                fh.write(data)
    _both_see(dest, tmp_path)


# -- hostile archives ----------------------------------------------------------------------------------------
def test_an_encrypted_zip_member_is_refused_by_name(tmp_path):
    dest = _zip(tmp_path / "enc.zip", list(_files(_model(tmp_path)).items()))
    raw = bytearray(dest.read_bytes())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = raw.find(sig)
        while pos != -1:
            raw[pos + flag_at] |= 1
            pos = raw.find(sig, pos + 4)
    dest.write_bytes(bytes(raw))
    _refused_by_both(dest, "encrypted")


def test_a_zip_declaring_more_entries_than_the_cap_is_refused_before_it_is_parsed(tmp_path):
    dest = _zip(tmp_path / "many.zip", list(_files(_model(tmp_path)).items()))
    raw = bytearray(dest.read_bytes())
    at = raw.rfind(b"PK\x05\x06")
    raw[at + 8:at + 12] = b"\xff\xfe\xff\xfe"  # 65,534 entries on this disk and in all
    dest.write_bytes(bytes(raw))
    _refused_by_both(dest, "more than 100 members", limits=InspectLimits(archive_max_files=100))


def test_many_empty_folders_count_as_members(tmp_path):
    files = _files(_model(tmp_path))
    dest = tmp_path / "dirs.tar"
    with tarfile.open(dest, "w") as tf:
        for i in range(50):
            d = tarfile.TarInfo(f"d{i}")
            d.type = tarfile.DIRTYPE
            tf.addfile(d)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    _refused_by_both(dest, "more than 20 members", limits=InspectLimits(archive_max_files=20))


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_links_pointing_out_are_refused_by_prepare_too(tmp_path, kind):
    files = _files(_model(tmp_path))
    dest = tmp_path / "link.tar"
    with tarfile.open(dest, "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("tokenizer_config.json")
        link.type, link.linkname = kind, "../../../etc/passwd"
        tf.addfile(link)
    _refused_by_both(dest, "points outside")


@pytest.mark.parametrize("name", ["../evil.json", "/tmp/evil.json", "model/../../evil.json", "..\\evil.json"])
def test_nothing_is_written_outside_the_work_folder(tmp_path, name):
    files = _files(_model(tmp_path))
    dest = _tar(tmp_path / "out.tar", [*files.items(), (name, b"{}")])
    _refused_by_both(dest)
    assert not (tmp_path / "evil.json").exists() and not Path("/tmp/evil.json").exists()


def test_a_device_member_is_refused_by_prepare_too(tmp_path):
    files = _files(_model(tmp_path))
    dest = tmp_path / "dev.tar"
    with tarfile.open(dest, "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        dev = tarfile.TarInfo("vocab.txt")
        dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 5
        tf.addfile(dev)
    _refused_by_both(dest, "special file")


def test_a_zip_bomb_is_refused_by_prepare_too(tmp_path):
    files = _files(_model(tmp_path))
    dest = _zip(tmp_path / "bomb.zip", [*files.items(), ("pytorch_model.bin", b"\0" * (10 * 1024**2))])
    _refused_by_both(dest, "zip bomb")


def test_a_nested_archive_is_refused_by_prepare_too(tmp_path):
    files = _files(_model(tmp_path))
    _refused_by_both(_zip(tmp_path / "outer.zip", [*files.items(), ("weights.tar.gz", b"\x1f\x8b" + b"\0" * 50)]),
                     "nested")


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_a_truncated_archive_never_yields_a_short_file(tmp_path, kind):
    model = _model(tmp_path)
    (model / "pad.txt").write_bytes(os.urandom(20_000))
    members = list(_files(model).items())
    dest = tmp_path / f"cut.{kind}"
    _zip(dest, members) if kind == "zip" else _tar(dest, members, "w:gz" if kind == "tar.gz" else "w")
    raw = dest.read_bytes()
    dest.write_bytes(raw[: int(len(raw) * 0.8)])
    try:
        listing, prefix = dl.archive_listing(dest, LIMITS)
        work = tmp_path / "work"
        dl.archive_extract(dest, prefix, dl.needed_files(listing), work, dl.DownloadProgress(), LIMITS)
    except PrepareError as exc:
        assert "\n" not in exc.message
    else:  # what was extracted is whole
        for name, size in dl.needed_files(listing).items():
            assert (work / name).stat().st_size == size


# -- the Hub: Prepare through the inspection's source --------------------------------------------------------
@pytest.fixture
def hub_repo(tmp_path):
    from hubserver import HubServer

    model = _model(tmp_path)
    with HubServer() as hub:
        yield hub, hub.add_repo("org/tiny", model), model


def _hub_prepare(hub, tmp_path, **spec):
    source = SourceSpec(kind="hub", repo_id="org/tiny", endpoint=hub.url, **spec)
    return prepare(source, PrepareOptions(steps=[]), work_dir=tmp_path / "work",
                   storage=LocalStorage(tmp_path / "media"), key="prepared/1/1")


@pytest.mark.parametrize("fault", [503, "reset"])
def test_prepare_retries_transient_hub_faults_like_the_inspection(hub_repo, tmp_path, fault):
    hub, _sha, model = hub_repo
    hub.fail_next(2, fault)
    result = _hub_prepare(hub, tmp_path, hub_attempts=3)
    out = Path(result.stored.location)
    assert sha256_file(out / "model.safetensors") == sha256_file(model / "model.safetensors")


def test_prepare_gives_up_after_its_attempts_with_the_source_layers_words(hub_repo, tmp_path):
    hub, _sha, _model_dir = hub_repo
    hub.fail_next(2, 503)
    with pytest.raises(PrepareError) as caught:
        _hub_prepare(hub, tmp_path, hub_attempts=2)
    assert caught.value.code == "source_unavailable" and "answered 503" in caught.value.message


def test_prepare_uses_the_hub_timeout(hub_repo, tmp_path):
    hub, _sha, _model_dir = hub_repo
    hub.latency = 1.0
    with pytest.raises(PrepareError) as caught:
        _hub_prepare(hub, tmp_path, hub_timeout=0.2, hub_attempts=1)
    assert caught.value.code == "source_unavailable" and "within 0.2 s" in caught.value.message


def test_prepare_downloads_the_commit_it_listed(hub_repo, tmp_path):
    """Every file comes from one commit, as in the inspection: never `main` read twice."""
    hub, sha, _model_dir = hub_repo
    _hub_prepare(hub, tmp_path)
    fetched = [e["path"] for e in hub.log if "/resolve/" in e["path"]]
    assert fetched and all(f"/resolve/{sha}/" in p for p in fetched), fetched


def test_a_missing_repo_is_access_denied_for_prepare(hub_repo, tmp_path):
    hub, _sha, _model_dir = hub_repo
    source = SourceSpec(kind="hub", repo_id="org/nothing", endpoint=hub.url)
    with pytest.raises(PrepareError) as caught:
        prepare(source, PrepareOptions(steps=[]), work_dir=tmp_path / "work",
                storage=LocalStorage(tmp_path / "media"), key="prepared/1/1")
    assert caught.value.code == "access_denied" and "org/nothing" in caught.value.message


# -- more archives as they come ------------------------------------------------------------------------------
def test_a_tar_gz_that_the_browser_already_unpacked_is_read_as_a_tar(tmp_path):
    """Browsers may gunzip a downloaded .tar.gz and keep its name; a gzipped tar may be called .tar."""
    members = [(f"model/{k}", v) for k, v in _files(_model(tmp_path)).items()]
    plain = _tar(tmp_path / "unpacked.tar.gz", members, "w")
    assert plain.read_bytes()[:2] != b"\x1f\x8b"
    _both_see(plain, tmp_path)
    gzipped = _tar(tmp_path / "packed.tar", members, "w:gz")
    _both_see(gzipped, tmp_path)


def test_a_giant_member_header_is_refused_before_it_is_read_into_memory(tmp_path):
    files = _files(_model(tmp_path))
    dest = tmp_path / "longname.tar"
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("x" * (9 * 1024**2))  # a 9 MiB name in a PAX header
        tf.addfile(info, io.BytesIO(b""))
    _refused_by_both(dest, "header larger than", limits=InspectLimits(max_header_bytes=4096,
                                                                        max_small_file_bytes=4096))


def test_a_zip_whose_directory_is_far_larger_than_its_member_count_is_refused(tmp_path):
    dest = tmp_path / "lying.zip"
    with zipfile.ZipFile(dest, "w") as zf:
        for name, data in _files(_model(tmp_path)).items():
            zf.writestr(name, data)
        for i in range(1500):
            zf.writestr(f"{i:04d}" + "n" * 1000 + ".txt", b"")
    raw = bytearray(dest.read_bytes())
    at = raw.rfind(b"PK\x05\x06")
    raw[at + 8:at + 12] = b"\x03\x00\x03\x00"  # claims 3 entries
    dest.write_bytes(bytes(raw))
    _refused_by_both(dest, "directory of", limits=InspectLimits(archive_max_files=100))


def test_a_name_the_file_system_refuses_is_a_clear_prepare_error(tmp_path):
    files = _files(_model(tmp_path))
    long_name = "n" * 300 + ".json"  # inspected in memory fine; no Linux file system takes it
    dest = _tar(tmp_path / "long.tar", [*files.items(), (long_name, b"{}")])
    assert inspect(str(dest)).deployable
    listing, prefix = dl.archive_listing(dest, LIMITS)
    with pytest.raises(PrepareError) as caught:
        dl.archive_extract(dest, prefix, dl.needed_files(listing), tmp_path / "work", dl.DownloadProgress(), LIMITS)
    assert caught.value.code == "source_unavailable" and "cannot unpack" in caught.value.message


def test_a_download_retries_and_resumes_after_faults_mid_file(hub_repo, tmp_path):
    """The file itself (not only the listing) is fetched with the source's retries."""
    from cfm.inspection.hub import open_hub
    from cfm.inspection.hubfetch import fetch_file

    hub, _sha, model = hub_repo
    source = open_hub("org/tiny", limits=LIMITS, hub_endpoint=hub.url, attempts=3)
    try:
        hub.fail_next(1, 503)  # the metadata request
        part = tmp_path / "model.safetensors.part"
        assert fetch_file(source, "model.safetensors", part, size=0) == (model / "model.safetensors").stat().st_size
        assert part.read_bytes() == (model / "model.safetensors").read_bytes()
        part.write_bytes(part.read_bytes()[:100])  # a download cut short: the next one resumes
        hub.reset_counters()
        hub.fail_next(1, "reset")
        fetch_file(source, "model.safetensors", part, size=0)
        assert part.read_bytes() == (model / "model.safetensors").read_bytes()
        assert all(start >= 100 for _repo, path, start, _end in hub.served if path == "model.safetensors")
    finally:
        source.close()


def test_a_download_that_stalls_times_out_with_the_sources_timeout(hub_repo, tmp_path):
    from cfm.inspection.hub import open_hub
    from cfm.inspection.hubfetch import fetch_file

    hub, _sha, _model_dir = hub_repo
    source = open_hub("org/tiny", limits=LIMITS, hub_endpoint=hub.url, timeout=0.3, attempts=2)
    try:
        hub.latency = 1.0  # every answer from now on takes longer than the timeout
        with pytest.raises(SourceError) as caught:
            fetch_file(source, "model.safetensors", tmp_path / "m.part", size=0)
        assert caught.value.code == "timeout" and "0.3 s" in caught.value.message
    finally:
        source.close()
