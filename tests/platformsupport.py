"""For the platform tests: the platform imitation (tests/platformserver.py),
a real S3-compatible server (moto), a space connected to both, and helpers.
tests/platform/conftest.py imports the fixtures; tests import the helpers:

    from platformsupport import deploy, drive, bucket_objects
"""
from __future__ import annotations

import json
import time
import uuid

import pytest

API_KEY = "test-api-key-123"
ACCESS_KEY, SECRET_KEY = "AKIDTESTTEST", "s3-secret-never-shown"


@pytest.fixture(scope="session")
def s3_url(session_s3):
    return session_s3


@pytest.fixture
def bucket(s3_url):
    """A fresh bucket and a boto3 client to look into it."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY)
    name = f"cfm-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.name = name  # type: ignore[attr-defined]
    return s3


def bucket_objects(s3) -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s3.name):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = s3.get_object(Bucket=s3.name, Key=obj["Key"])["Body"].read()
    return out


@pytest.fixture
def platform(settings, s3_url, tmp_path):
    from platformserver import PlatformServer

    from cfm.platform.client import forget_tokens

    server = PlatformServer(api_key=API_KEY, ready_after=0.2).start()
    settings.CFM_PLATFORM_URLS = [server.url]
    settings.CFM_STORAGE_URLS = [s3_url]
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"
    forget_tokens()
    yield server
    server.stop()
    forget_tokens()


def connection_body(platform, s3_url, bucket, **over) -> dict:
    body = {"url": platform.url, "iam_url": platform.url, "api_key": API_KEY, "space_id": "space-1",
            "storage": {"endpoint": s3_url, "bucket": bucket.name, "access_key_id": ACCESS_KEY,
                        "secret_access_key": SECRET_KEY, "connection_id": "conn-77", "prefix": "cfm"}}
    body.update(over)
    return body


@pytest.fixture
def connected(owner, platform, s3_url, bucket):
    """alice's space, connected to the imitation and the bucket."""
    from cfm.platform import services

    services.connection_put(user=owner.user, space=owner.space, data=connection_body(platform, s3_url, bucket))
    return owner


def drive(deployment_id: int, *, timeout: float = 20.0):
    """Run the deployment's tracking steps here, in the test's transaction,
    as the `deployment` job runs them (the runtime itself runs them in
    test_worker.py), until nothing more is to be done; returns the row."""
    from cfm.platform import tracking
    from cfm.quota.models import Deployment

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        delay = tracking.step(Deployment.objects.get(pk=deployment_id))
        if delay is None:
            break
        time.sleep(min(delay, 0.2))
    return Deployment.objects.get(pk=deployment_id)


@pytest.fixture
def tiny_archive(connected, tmp_path):
    """A deployable tiny llama registered as an archive: cfm holds its files."""
    from modelfactory import make_tiny_real
    from preparation.prep_builders import archive_registration

    folder = make_tiny_real(tmp_path / "tiny-llama")
    reg = archive_registration(connected, folder, tmp_path)
    assert reg.report["deployable"], reg.report
    return reg


def deploy(client, actor, reg, name: str, **extra):
    body = {"registration": reg.id, "space": actor.space.id, "serving_name": name, **extra}
    return client.post("/api/v1/deployments", data=json.dumps(body), content_type="application/json", **actor.auth)
