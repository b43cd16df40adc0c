"""Downloads from a real (local) Hub server with the real huggingface_hub
client: only the files needed, per-file progress, cancel, resume. Storage
in a real S3-compatible server (moto's server mode) through boto3."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hubserver import HubServer
from prep_builders import write_json
from safetensors.numpy import save_file

from cfm.preparation.errors import Cancelled, PrepareError
from cfm.preparation.pipeline import PrepareOptions, SourceSpec, prepare
from cfm.preparation.storage import MANIFEST_NAME, LocalStorage, S3Storage, sha256_file, write_manifest

BIG = 24 * 1024 * 1024  # more than two of the Hub client's 10 MB chunks


@pytest.fixture
def ttm_repo(tmp_path):
    folder = tmp_path / "ttm"
    folder.mkdir()
    write_json(folder / "config.json", {"model_type": "tinytimemixer", "context_length": 512,
                                        "prediction_length": 96})
    save_file({"backbone.w": np.zeros(BIG // 4, dtype=np.float32)}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    (folder / "README.md").write_text("# not needed\n")
    (folder / "model.onnx").write_bytes(b"\0" * 1000)  # another format: not downloaded
    with HubServer() as hub:
        sha = hub.add_repo("ibm/ttm-test", folder)
        yield hub, sha


def test_hub_download_is_cancellable_and_a_rerun_resumes_where_it_stopped(ttm_repo, tmp_path):
    hub, sha = ttm_repo
    source = SourceSpec(kind="hub", repo_id="ibm/ttm-test", revision=sha, endpoint=hub.url)
    options = PrepareOptions(steps=["add_tsfm_config"])
    seen: list[dict] = []

    partial = tmp_path / "work" / "download" / ".partial" / "model.safetensors.part"

    def cancel_mid_file() -> bool:  # once the Hub client has written a chunk of the big file
        return partial.exists() and partial.stat().st_size > 0

    with pytest.raises(Cancelled):
        prepare(source, options, work_dir=tmp_path / "work", storage=LocalStorage(tmp_path / "media"),
                key="prepared/1/1", progress=lambda stage, d: stage == "downloading" and seen.append(d),
                cancel=cancel_mid_file)
    assert not (tmp_path / "media").exists()
    first = seen[-1]
    size = (tmp_path / "ttm" / "model.safetensors").stat().st_size
    assert first["files"]["model.safetensors"]["total"] == size
    assert set(first["files"]) == {"config.json", "model.safetensors"}  # no README, no .onnx
    resumed_from = partial.stat().st_size
    assert 0 < resumed_from < size

    hub.wait_idle()  # the aborted response's thread may still push one chunk
    hub.reset_counters()
    seen.clear()
    result = prepare(source, options, work_dir=tmp_path / "work", storage=LocalStorage(tmp_path / "media"),
                     key="prepared/1/1", progress=lambda stage, d: stage == "downloading" and seen.append(d))
    served = sum(end - start for _repo, path, start, end in hub.served if path == "model.safetensors")
    assert served == size - resumed_from  # only the missing bytes
    assert seen[-1]["done"] == seen[-1]["total"]
    out = Path(result.stored.location)
    assert sha256_file(out / "model.safetensors") == sha256_file(tmp_path / "ttm" / "model.safetensors")
    assert result.report["deployable"] and (out / "tsfm_config.json").is_file()


def test_a_resume_from_a_server_that_ignores_range_starts_the_file_again_and_still_checks_it(ttm_repo, tmp_path):
    hub, sha = ttm_repo
    source = SourceSpec(kind="hub", repo_id="ibm/ttm-test", revision=sha, endpoint=hub.url)
    options = PrepareOptions(steps=["add_tsfm_config"])
    weights = tmp_path / "ttm" / "model.safetensors"
    partial = tmp_path / "work" / "download" / ".partial" / "model.safetensors.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\xff" * 1000)  # a stale, wrong prefix: the whole file must come again
    hub.ignore_range = True  # 200 with the whole file, as a proxy that drops Range does
    result = prepare(source, options, work_dir=tmp_path / "work", storage=LocalStorage(tmp_path / "media"),
                     key="prepared/1/1")
    assert sha256_file(Path(result.stored.location) / "model.safetensors") == sha256_file(weights)


def test_a_hub_file_whose_content_differs_from_its_declared_checksum_is_refused(ttm_repo, tmp_path):
    hub, sha = ttm_repo
    source = SourceSpec(kind="hub", repo_id="ibm/ttm-test", revision=sha, endpoint=hub.url)
    options = PrepareOptions(steps=["add_tsfm_config"])
    weights = tmp_path / "ttm" / "model.safetensors"
    with open(weights, "r+b") as fh:  # same size, one byte changed after the Hub recorded its sha256
        fh.seek(weights.stat().st_size - 1)
        fh.write(b"\x01")
    with pytest.raises(PrepareError) as refused:
        prepare(source, options, work_dir=tmp_path / "work", storage=LocalStorage(tmp_path / "media"),
                key="prepared/1/1")
    assert refused.value.code == "download_failed" and "model.safetensors" in refused.value.message
    assert "checksum" in refused.value.message
    assert not (tmp_path / "media").exists()
    leftovers = [p.name for p in (tmp_path / "work").rglob("*") if p.is_file()]
    assert "model.safetensors" not in leftovers and "model.safetensors.part" not in leftovers

    with open(weights, "r+b") as fh:  # the Hub serves the right bytes again: a new run succeeds
        fh.seek(weights.stat().st_size - 1)
        fh.write(b"\x00")
    result = prepare(source, options, work_dir=tmp_path / "work", storage=LocalStorage(tmp_path / "media"),
                     key="prepared/1/1")
    assert sha256_file(Path(result.stored.location) / "model.safetensors") == sha256_file(weights)


def test_s3_storage_uploads_the_folder_with_its_manifest_last(s3_server, tmp_path):
    import boto3

    folder = tmp_path / "prepared"
    folder.mkdir()
    write_json(folder / "config.json", {"model_type": "tinytimemixer"})
    (folder / "model.safetensors").write_bytes(b"x" * 5000)
    manifest = write_manifest(folder)
    storage = S3Storage(endpoint=s3_server, bucket="models", access_key="test", secret_key="test",
                        region="us-east-1")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    client.create_bucket(Bucket="models")

    stored = storage.store(folder, "prepared/7/42")

    assert stored.location == "s3://models/prepared/7/42/"
    objects = {o["Key"]: o for o in client.list_objects_v2(Bucket="models", Prefix="prepared/7/42/")["Contents"]}
    assert set(objects) == {f"prepared/7/42/{n}" for n in ("config.json", "model.safetensors", MANIFEST_NAME)}
    # The manifest is written last: the mark of a complete folder.
    assert max(objects.values(), key=lambda o: o["LastModified"])["Key"].endswith(MANIFEST_NAME) or \
        len({o["LastModified"] for o in objects.values()}) == 1
    body = client.get_object(Bucket="models", Key="prepared/7/42/model.safetensors")["Body"].read()
    assert body == b"x" * 5000
    sums = client.get_object(Bucket="models", Key=f"prepared/7/42/{MANIFEST_NAME}")["Body"].read().decode()
    assert f"{manifest['model.safetensors']['sha256']}  model.safetensors" in sums
    assert not folder.exists()  # uploaded, the local copy is gone

    # A re-run replaces the folder: what it no longer holds is removed.
    folder.mkdir()
    write_json(folder / "config.json", {"model_type": "tinytimemixer"})
    write_manifest(folder)
    storage.store(folder, "prepared/7/42")
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="models", Prefix="prepared/7/42/")["Contents"]}
    assert keys == {"prepared/7/42/config.json", f"prepared/7/42/{MANIFEST_NAME}"}


def test_s3_storage_failure_removes_what_it_uploaded(s3_server, tmp_path):
    folder = tmp_path / "prepared"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    write_manifest(folder)
    storage = S3Storage(endpoint=s3_server, bucket="no-such-bucket", access_key="test", secret_key="test",
                        region="us-east-1")
    from cfm.preparation.errors import PrepareError

    with pytest.raises(PrepareError) as caught:
        storage.store(folder, "prepared/1/1")
    assert caught.value.code == "storage_failed" and "no-such-bucket" in caught.value.message
    assert folder.exists()  # kept for a retry
