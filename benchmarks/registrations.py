"""What a registration costs the web side: the POST /api/v1/registrations
latency with the broker up and with it down (the row waits in the outbox),
and storing an archive upload (time, and peak Python memory: the upload is
streamed to disk, never held whole).

Runs in a throwaway test database (DATABASE_URL's server, or SQLite) with
the broker REDIS_URL names (or the embedded one); nothing is inspected (no
worker needed).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cfm REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python benchmarks/registrations.py [--requests 50] [--upload-mb 256]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cfm.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.files.uploadedfile import TemporaryUploadedFile  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[max(0, int(len(values) * 0.95) - 1)]
    median = statistics.median(values)
    return f"median {median * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   max {values[-1] * 1000:7.1f} ms"


def post_many(client, actor, n: int, prefix: str) -> list[float]:
    times = []
    for i in range(n):
        body = json.dumps({"account": actor.account.pk, "source": f"bench/{prefix}-{i}"})
        started = time.perf_counter()
        r = client.post("/api/v1/registrations", data=body, content_type="application/json", **actor.auth)
        times.append(time.perf_counter() - started)
        assert r.status_code == 201, r.content
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--upload-mb", type=int, default=256)
    args = parser.parse_args()

    from actors import make_actor
    from django.test import Client

    from cfm.celery import app

    config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    media = Path(tempfile.mkdtemp(prefix="cfm-bench-media-"))
    settings.MEDIA_ROOT = media
    try:
        actor = make_actor("bench")
        client = Client()
        print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}   "
              f"broker: {settings.CELERY_BROKER_URL.split('@')[-1]}")
        up = post_many(client, actor, args.requests, "up")
        print(f"POST /registrations, broker up   ({args.requests}): {ms(up)}")

        old = app.conf.broker_url
        app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
        app._pool = None
        app.amqp._producer_pool = None
        try:
            down = post_many(client, actor, args.requests, "down")
        finally:
            app.conf.broker_url = old
            app._pool = None
            app.amqp._producer_pool = None
        print(f"POST /registrations, broker DOWN ({args.requests}): {ms(down)}   (rows left in the outbox)")

        from cfm.registry.services import registration_create

        size = args.upload_mb * 1024 * 1024
        upload = TemporaryUploadedFile("bench.tar", "application/x-tar", 0, None)
        import tarfile

        info = tarfile.TarInfo("m/model.safetensors")
        info.size = size
        upload.file.write(info.tobuf())
        chunk = b"\0" * (1024 * 1024)
        for _ in range(args.upload_mb):
            upload.file.write(chunk)
        upload.file.write(b"\0" * (2 * tarfile.BLOCKSIZE))  # the end-of-archive marker
        upload.size = upload.file.tell()
        upload.file.seek(0)
        tracemalloc.start()
        started = time.perf_counter()
        registration, _ = registration_create(account=actor.account, user=actor.user, source_kind="archive",
                                              source="", archive=upload)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"archive upload stored: {upload.size / 1e6:.0f} MB in {elapsed:.2f} s "
              f"({upload.size / 1e6 / elapsed:.0f} MB/s), peak Python memory {peak / 1e6:.1f} MB")
    finally:
        teardown_databases(config, verbosity=0)
        import shutil

        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
