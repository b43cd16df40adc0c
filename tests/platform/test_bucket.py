"""The bucket upload against moto: parts, resume, skip."""
from __future__ import annotations

import hashlib
import os


def test_a_retried_upload_resumes_the_unfinished_multipart_upload(bucket, tmp_path, s3_url, monkeypatch):
    from platformsupport import bucket_objects

    from cfm.platform import bucket as bk
    from cfm.preparation.storage import write_manifest

    # Small parts, so that a small file goes in several (S3's minimum part is 5 MiB but for the last).
    monkeypatch.setattr(bk, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    monkeypatch.setattr(bk, "PART_SIZE", 5 * 1024 * 1024)
    folder = tmp_path / "m"
    folder.mkdir()
    data = os.urandom(12 * 1024 * 1024)  # three parts: 5 + 5 + 2 MiB
    (folder / "model.safetensors").write_bytes(data)
    (folder / "config.json").write_text("{}")
    write_manifest(folder)
    digest = hashlib.sha256(data).hexdigest()
    key = "cfm/1/2/abc/model.safetensors"
    # What an attempt that died leaves: an unfinished upload holding its first two parts.
    upload = bucket.create_multipart_upload(Bucket=bucket.name, Key=key, Metadata={"sha256": digest})
    for number in (1, 2):
        part = data[(number - 1) * 5 * 1024 * 1024:number * 5 * 1024 * 1024]
        bucket.upload_part(Bucket=bucket.name, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=part)
    seen: list[tuple[int, int]] = []
    s3 = bk.client(endpoint=s3_url, access_key_id="AKIDTESTTEST", secret_access_key="s3-secret-never-shown")
    result = bk.upload_folder(s3, bucket=bucket.name, base="cfm/1/2/abc", folder=folder,
                              progress=lambda done, total: seen.append((done, total)))
    manifest = (folder / "SHA256SUMS").read_bytes()
    # only the last part (2 MiB), config.json and the manifest went up
    assert result.bytes_sent == 2 * 1024 * 1024 + 2 + len(manifest)
    assert result.bytes_total == len(data) + 2 + len(manifest)
    assert seen[-1] == (result.bytes_total, result.bytes_total)
    assert bucket_objects(bucket) == {key: data, "cfm/1/2/abc/config.json": b"{}",
                                      "cfm/1/2/abc/SHA256SUMS": manifest}
    assert bucket.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []) == []
    # and once the manifest is there, the folder is not sent again
    again = bk.upload_folder(s3, bucket=bucket.name, base="cfm/1/2/abc", folder=folder)
    assert again.skipped and again.bytes_sent == 0
