"""Deploying for real, measured against the platform imitation
(tests/platformserver.py) and a real S3-compatible server (moto):

1. Deploy → ready: POST /api/v1/deployments, then the tracking steps as the
   `deployment` job runs them (upload, model asset, deployment, polls with
   backoff), until `ready`. The imitation's own start-up delay is subtracted:
   what is left is cfm's part (upload, requests, and the wait the poll
   backoff adds after the platform was ready).
2. Upload throughput of a folder (1 GB by default, four files) to moto:
   cfm's upload (parts in parallel, resumable, manifest last) next to a plain
   boto3 `upload_file` of the same files, in the same run, alternating.

Runs in a throwaway test database (DATABASE_URL's server, or SQLite).

    .venv/bin/python benchmarks/deploy.py [--mb 1024] [--rounds 2] [--ready-after 2]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cfm.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def empty(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])


def deploy_to_ready(work: Path, s3_url: str, ready_after: float) -> None:
    from django.test import Client
    from modelfactory import make_tiny_real
    from platformserver import PlatformServer
    from preparation.prep_builders import archive_registration
    from quotafactory import make_actor

    from cfm.platform import services, tracking
    from cfm.quota.models import Deployment

    platform = PlatformServer(api_key="bench-key", ready_after=ready_after).start()
    settings.CFM_PLATFORM_URLS = [platform.url]
    settings.CFM_STORAGE_URLS = [s3_url]
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="AK",
                      aws_secret_access_key="SK")
    s3.create_bucket(Bucket="deploy-bench")
    actor = make_actor("bench")
    services.connection_put(user=actor.user, space=actor.space, data={
        "url": platform.url, "iam_url": platform.url, "api_key": "bench-key", "space_id": "space-1",
        "storage": {"endpoint": s3_url, "bucket": "deploy-bench", "access_key_id": "AK", "secret_access_key": "SK",
                    "connection_id": "conn-1"}})
    reg = archive_registration(actor, make_tiny_real(work / "tiny"), work)
    client = Client()
    client.get("/api/v1/accounts", **actor.auth)  # warm: the first request imports and builds the API
    for attempt, name in enumerate(("bench_ready", "bench_again")):
        platform.requests.clear()
        body = {"registration": reg.id, "space": actor.space.id, "serving_name": name}
        wall = time.time()
        started = time.perf_counter()
        r = client.post("/api/v1/deployments", data=json.dumps(body), content_type="application/json", **actor.auth)
        assert r.status_code == 201, r.content
        answered = time.perf_counter()
        polls = 0
        while True:
            delay = tracking.step(Deployment.objects.get(pk=r.json()["id"]))
            if delay is None:
                break
            polls += 1
            time.sleep(delay)
        total = time.perf_counter() - started
        dep = Deployment.objects.get(pk=r.json()["id"])
        assert dep.state == "ready", dep.message_key
        created = next(q.at for q in platform.requests if q.path == "/ml/v4/deployments" and q.method == "POST")
        last_poll = [q.at for q in platform.requests if q.method == "GET"][-1]
        what = "first deployment (fetch + upload)" if attempt == 0 else "the same model again (upload skipped)"
        print(f"Deploy → ready, {what}; imitation delay {ready_after:.1f} s, "
              f"a {dep.progress.get('bytes_total', 0):,}-byte model:")
        print(f"  POST /deployments answered in {(answered - started) * 1000:.1f} ms")
        print(f"  upload, token, model asset, deployment request: {created - wall:.3f} s")
        print(f"  ready seen {last_poll - (created + ready_after):.2f} s after the platform was ready "
              f"({polls + 1} look(s), backoff {tracking.POLL_FIRST:.0f} s doubling)")
        print(f"  total {total:.2f} s; minus the platform's delay: {total - ready_after:.2f} s")
    platform.stop()


def upload_throughput(work: Path, s3_url: str, mb: int, rounds: int) -> None:
    import boto3

    from cfm.platform import bucket as bk
    from cfm.preparation.storage import write_manifest

    folder = work / "gigabyte"
    folder.mkdir()
    per_file = mb * 1024 * 1024 // 4
    chunk = os.urandom(16 * 1024 * 1024)
    for i in range(4):
        with open(folder / f"model-{i + 1:05d}-of-00004.safetensors", "wb") as fh:
            left = per_file
            while left > 0:
                fh.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)
    write_manifest(folder)
    total = sum(p.stat().st_size for p in folder.iterdir())
    s3 = bk.client(endpoint=s3_url, access_key_id="AK", secret_access_key="SK", timeout=300)
    plain = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="AK",
                         aws_secret_access_key="SK")
    for name in ("bench-cfm", "bench-boto3"):
        plain.create_bucket(Bucket=name)
    print(f"\nUpload of a {total / 1e9:.2f} GB folder (4 files + SHA256SUMS) to moto, {rounds} round(s) each:")
    results: dict[str, list[float]] = {"cfm upload_folder": [], "boto3 upload_file": []}
    for _round in range(rounds):
        empty(plain, "bench-cfm")
        started = time.perf_counter()
        result = bk.upload_folder(s3, bucket="bench-cfm", base="cfm/1/1/abc", folder=folder)
        results["cfm upload_folder"].append(time.perf_counter() - started)
        assert not result.skipped and result.bytes_total == total
        empty(plain, "bench-boto3")
        started = time.perf_counter()
        for path in sorted(folder.iterdir()):
            plain.upload_file(str(path), "bench-boto3", f"plain/{path.name}")
        results["boto3 upload_file"].append(time.perf_counter() - started)
    for name, times in results.items():
        best = min(times)
        print(f"  {name:18s} best {best:6.2f} s  {total / best / 1e6:7.1f} MB/s   (all: "
              + ", ".join(f"{t:.2f}" for t in times) + ")")
    started = time.perf_counter()
    again = bk.upload_folder(s3, bucket="bench-cfm", base="cfm/1/1/abc", folder=folder)
    print(f"  the same folder again: skipped={again.skipped} in {(time.perf_counter() - started) * 1000:.0f} ms")
    empty(plain, "bench-cfm")
    empty(plain, "bench-boto3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ready-after", type=float, default=2.0)
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    s3_url = f"http://127.0.0.1:{port}"
    config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            settings.VAR_DIR = work / "var"
            settings.MEDIA_ROOT = work / "media"
            deploy_to_ready(work, s3_url, args.ready_after)
            if args.mb:
                upload_throughput(work, s3_url, args.mb, args.rounds)
    finally:
        teardown_databases(config, verbosity=0)
        moto.stop()


if __name__ == "__main__":
    main()
