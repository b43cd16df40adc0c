"""The bucket the platform reads models from (S3-compatible: IBM Cloud
Object Storage, moto in the tests), through boto3.

A model folder goes to `{prefix}/{account}/{registration}/{digest}/` where
`digest` is the first 12 hex digits of the SHA-256 of its SHA256SUMS. The
manifest goes last: it marks a complete folder, and a folder whose manifest
is already there with the same bytes is not uploaded again. Large files go
in parts; a retry finds the unfinished multipart upload and sends only the
parts that are missing. A file already there (same size and SHA-256 in its
metadata) is skipped, so a retried folder resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = "SHA256SUMS"
#: files above this go in parts (as boto3's transfer manager does by default)
MULTIPART_THRESHOLD = 8 * 1024 * 1024
#: the smallest part; a file of more than MAX_PARTS of them gets larger parts
PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 9000  # S3 and IBM COS allow 10,000
#: parts (or small files) in flight at once
CONCURRENCY = 10

ProgressFn = Callable[[int, int], None]


class BucketError(Exception):
    """The bucket refused or could not be reached; the message says which."""


def client(*, endpoint: str, access_key_id: str, secret_access_key: str, timeout: int = 60):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"},
                      connect_timeout=10, read_timeout=timeout, max_pool_connections=CONCURRENCY + 2))


def manifest_digest(folder: Path) -> str:
    return hashlib.sha256((folder / MANIFEST_NAME).read_bytes()).hexdigest()[:12]


def manifest_entries(folder: Path) -> list[tuple[str, str]]:
    """(sha256, name) per line of SHA256SUMS: the files to upload."""
    entries = []
    for line in (folder / MANIFEST_NAME).read_text(encoding="utf-8").splitlines():
        if "  " in line:
            digest, name = line.split("  ", 1)
            entries.append((digest, name))
    return entries


@dataclass
class UploadResult:
    file_path: str  # the folder's key prefix, no trailing slash
    skipped: bool
    bytes_total: int
    bytes_sent: int
    files: int


def _errors():
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (Boto3Error, BotoCoreError, ClientError)


def describe(exc: Exception) -> str:
    """A bucket failure in a few words, never the keys."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error") or {}
        return f"{err.get('Code') or 'error'}: {err.get('Message') or ''}".strip().rstrip(":")
    return type(exc).__name__


class _Progress:
    def __init__(self, total: int, report: ProgressFn | None):
        self.done, self.total, self.report = 0, total, report
        self.lock = threading.Lock()
        self.last = 0.0

    def add(self, n: int, *, force: bool = False) -> None:
        with self.lock:
            self.done += n
            now = time.monotonic()
            if self.report and (force or now - self.last >= 0.5):
                self.last = now
                self.report(self.done, self.total)


def upload_folder(s3, *, bucket: str, base: str, folder: Path, progress: ProgressFn | None = None) -> UploadResult:
    """Upload `folder` (which holds SHA256SUMS) under `base/`. Raises BucketError."""
    errors = _errors()
    entries = manifest_entries(folder)
    manifest = (folder / MANIFEST_NAME).read_bytes()
    sizes = {name: (folder / name).stat().st_size for _d, name in entries}
    total = sum(sizes.values()) + len(manifest)
    state = _Progress(total, progress)
    try:
        if _same_object(s3, bucket, f"{base}/{MANIFEST_NAME}", manifest):
            state.add(total, force=True)
            return UploadResult(base, True, total, 0, len(entries))
        sent = 0
        small = [(d, n) for d, n in entries if sizes[n] <= MULTIPART_THRESHOLD]
        large = [(d, n) for d, n in entries if sizes[n] > MULTIPART_THRESHOLD]
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            results = list(pool.map(lambda e: _put_small(s3, bucket, f"{base}/{e[1]}", folder / e[1], e[0],
                                                         sizes[e[1]], state), small))
            sent += sum(results)
            for digest, name in large:
                sent += _put_large(s3, pool, bucket, f"{base}/{name}", folder / name, digest, sizes[name], state)
        s3.put_object(Bucket=bucket, Key=f"{base}/{MANIFEST_NAME}", Body=manifest)
        state.add(len(manifest), force=True)
        return UploadResult(base, False, total, sent + len(manifest), len(entries))
    except errors as exc:
        raise BucketError(describe(exc)) from None
    except OSError as exc:
        raise BucketError(f"cannot read the model folder: {exc.strerror or exc}") from None


def _same_object(s3, bucket: str, key: str, data: bytes) -> bool:
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return False
        raise
    return body == data


def _already(s3, bucket: str, key: str, digest: str, size: int) -> bool:
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return False
        raise
    return head.get("ContentLength") == size and (head.get("Metadata") or {}).get("sha256") == digest


def _put_small(s3, bucket: str, key: str, path: Path, digest: str, size: int, state: _Progress) -> int:
    if _already(s3, bucket, key, digest, size):
        state.add(size)
        return 0
    with open(path, "rb") as fh:
        s3.put_object(Bucket=bucket, Key=key, Body=fh, Metadata={"sha256": digest})
    state.add(size)
    return size


def _put_large(s3, pool: ThreadPoolExecutor, bucket: str, key: str, path: Path, digest: str, size: int,
               state: _Progress) -> int:
    if _already(s3, bucket, key, digest, size):
        state.add(size)
        return 0
    # Resume: an unfinished upload of this key (from an attempt that died) keeps its parts.
    upload_id = None
    for upload in s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", []):
        if upload.get("Key") == key:
            upload_id = upload["UploadId"]
    done: dict[int, tuple[str, int]] = {}
    if upload_id is None:
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata={"sha256": digest})["UploadId"]
    else:
        for page in s3.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id):
            for part in page.get("Parts", []):
                done[part["PartNumber"]] = (part["ETag"], part["Size"])
    part_size = max(PART_SIZE, -(-size // MAX_PARTS))
    count = (size + part_size - 1) // part_size
    fd = os.open(path, os.O_RDONLY)

    def send(number: int) -> tuple[int, str, int]:
        offset = (number - 1) * part_size
        length = min(part_size, size - offset)
        if number in done and done[number][1] == length:
            state.add(length)
            return number, done[number][0], 0
        data = os.pread(fd, length, offset)
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)["ETag"]
        state.add(length)
        return number, etag, length

    try:
        parts = list(pool.map(send, range(1, count + 1)))
    finally:
        os.close(fd)
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _sent in sorted(parts)]})
    return sum(sent for _n, _e, sent in parts)


def check_write(s3, *, bucket: str, base: str) -> None:
    """Write and delete a small object (the connection check). Raises BucketError."""
    key = f"{base}/.cfm-check-{os.getpid()}-{int(time.time() * 1000)}"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"cfm connection check\n")
        s3.delete_object(Bucket=bucket, Key=key)
    except _errors() as exc:
        raise BucketError(describe(exc)) from None
