"""Where a prepared model folder goes: a local media folder by default, or
an S3-compatible bucket (what the platform reads models from).

Layout: `<prefix>/<key>/` holds the model folder exactly as the platform
expects it (config.json, *.safetensors, tokenizer.json, ... at its root),
plus `SHA256SUMS` (`sha256sum -c` format, one line per file), written last.

Atomicity: locally, the folder is renamed into place in one step, so a
reader never sees half a folder; in a bucket (no rename there), the
manifest is uploaded last and is the mark of a complete folder, and a
failed upload deletes what it wrote.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .errors import PrepareError

MANIFEST_NAME = "SHA256SUMS"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def folder_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != MANIFEST_NAME)


def write_manifest(folder: Path) -> dict[str, dict]:
    """sha256 and size of every file; writes SHA256SUMS into the folder."""
    manifest = {name: {"sha256": sha256_file(folder / name), "size": (folder / name).stat().st_size}
                for name in folder_files(folder)}
    lines = "".join(f"{v['sha256']}  {k}\n" for k, v in manifest.items())
    (folder / MANIFEST_NAME).write_text(lines, encoding="utf-8")
    return manifest


def verify_manifest(folder: Path) -> list[str]:
    """Names whose bytes do not match SHA256SUMS (empty when all match)."""
    bad = []
    for line in (folder / MANIFEST_NAME).read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            bad.append(name)
    return bad


@dataclass
class Stored:
    backend: str  # "local" or "s3"
    location: str  # absolute folder path, or s3://bucket/key/
    bucket: str = ""
    key: str = ""


def _no_space(exc: OSError) -> bool:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list):
        reasons = [str(item[-1]) for item in exc.args[0] if isinstance(item, tuple) and item]
        return any(f"[Errno {errno.ENOSPC}]" in r or f"[Errno {errno.EDQUOT}]" in r for r in reasons)
    return False


class LocalStorage:
    name = "local"

    def __init__(self, root: Path):
        self.root = Path(root)

    def store(self, folder: Path, key: str) -> Stored:
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.with_name(f".{final.name}.incoming")
        if staging.exists():
            shutil.rmtree(staging)
        try:
            try:
                os.rename(folder, staging)  # same filesystem: no copy
            except OSError:
                shutil.copytree(folder, staging)
            if final.exists():
                shutil.rmtree(final)  # a re-run replaces its own earlier result
            os.rename(staging, final)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            # shutil.Error (copytree) carries a list of (source, destination, reason): server paths, never shown.
            if _no_space(exc):
                raise PrepareError("disk_full", "the server ran out of disk space while storing the prepared "
                                                "folder") from None
            reason = f": {exc.strerror}" if exc.strerror else ""
            raise PrepareError("storage_failed", f"cannot store the prepared folder{reason}") from None
        return Stored("local", str(final.resolve()))

    def delete(self, stored: Stored) -> None:
        shutil.rmtree(stored.location, ignore_errors=True)

    def members(self, stored: Stored) -> list[tuple[str, int, Callable[[], Any]]]:
        """(name, size, opener) of every file of a stored folder, SHA256SUMS last: what a zip of it holds."""
        folder = Path(stored.location)
        if not (folder / MANIFEST_NAME).is_file():
            raise PrepareError("storage_failed", "the prepared folder is no longer stored")
        names = [*folder_files(folder), MANIFEST_NAME]
        return [(name, (folder / name).stat().st_size, partial(open, folder / name, "rb")) for name in names]


class S3Storage:
    name = "s3"

    def __init__(self, *, endpoint: str, bucket: str, access_key: str, secret_key: str, region: str,
                 prefix: str = ""):
        self.endpoint, self.bucket, self.region = endpoint, bucket, region
        self.access_key, self.secret_key = access_key, secret_key
        self.prefix = prefix.strip("/")

    def client(self):
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise PrepareError("missing_extras", "boto3 is needed for S3 storage: pip install 'cfm[convert]'") from None
        return boto3.client(
            "s3", endpoint_url=self.endpoint or None, region_name=self.region or None,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=120))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}".strip("/") if self.prefix else key.strip("/")

    def store(self, folder: Path, key: str) -> Stored:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        base = self._key(key)
        client = self.client()
        written: list[str] = []
        try:
            names = folder_files(folder)
            for name in [*names, MANIFEST_NAME]:  # the manifest last: it marks a complete folder
                object_key = f"{base}/{name}"
                client.upload_file(str(folder / name), self.bucket, object_key)
                written.append(object_key)
        except (Boto3Error, BotoCoreError, ClientError, OSError) as exc:
            for object_key in written:
                try:
                    client.delete_object(Bucket=self.bucket, Key=object_key)
                except (BotoCoreError, ClientError):
                    pass
            raise PrepareError("storage_failed", f"uploading to bucket {self.bucket} failed: {exc}") from None
        self._delete_stale(client, base + "/", set(written))
        shutil.rmtree(folder, ignore_errors=True)
        return Stored("s3", f"s3://{self.bucket}/{base}/", bucket=self.bucket, key=base + "/")

    def _delete_stale(self, client, prefix: str, keep: set[str]) -> None:
        """A re-run replaces its earlier result: objects it did not write
        now (e.g. shards named for another shard count) go, after the new
        folder is complete."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    if obj["Key"] not in keep:
                        client.delete_object(Bucket=self.bucket, Key=obj["Key"])
        except (BotoCoreError, ClientError):
            pass  # stale extras are harmless beside a complete SHA256SUMS

    def members(self, stored: Stored) -> list[tuple[str, int, Callable[[], Any]]]:
        """(name, size, opener) of every object under the stored key, SHA256SUMS last; each opener streams
        its object (botocore's body reads the socket as it is read)."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        bucket = stored.bucket or self.bucket
        found: dict[str, int] = {}
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=stored.key):
                for obj in page.get("Contents", []):
                    found[obj["Key"][len(stored.key):]] = int(obj["Size"])
        except (BotoCoreError, ClientError) as exc:
            raise PrepareError("storage_failed", f"the bucket {bucket} cannot be listed: {exc}") from None
        if MANIFEST_NAME not in found:
            raise PrepareError("storage_failed", "the prepared folder is no longer stored")

        def opener(name: str) -> Callable[[], Any]:
            return lambda: closing(client.get_object(Bucket=bucket, Key=stored.key + name)["Body"])

        names = [*sorted(n for n in found if n != MANIFEST_NAME), MANIFEST_NAME]
        return [(name, found[name], opener(name)) for name in names]

    def delete(self, stored: Stored) -> None:
        client = self.client()
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=stored.key):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=self.bucket, Key=obj["Key"])
