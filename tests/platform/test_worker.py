# ruff: noqa: F811  (pytest fixtures imported from worker_support are redefined as arguments)
"""Real deployments through the real Celery worker (the session's, with
beat: the sweeper), the imitation and moto: the whole way to ready, a
worker killed while the deployment is initializing, the broker down
during Deploy."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest
from worker_support import alice, broker_at, wait_for, worker  # noqa: F401

pytestmark = pytest.mark.services
CLOSED_PORT = "redis://127.0.0.1:1/3"


@pytest.fixture
def live(worker, alice, tmp_path):
    """alice's space connected to the session's imitation and a fresh bucket,
    and a tiny llama she registered as an archive."""
    import boto3
    from modelfactory import make_tiny_real
    from preparation.prep_builders import archive_registration

    from cfm.platform import services

    alice.space = alice.account.spaces.get()
    platform = worker.platform
    platform.reset(api_key="test-api-key-123")
    platform.ready_after = 0.3
    name = f"cfm-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=worker.s3, region_name="us-east-1", aws_access_key_id="AK",
                 aws_secret_access_key="SK").create_bucket(Bucket=name)
    from django.conf import settings

    settings.CFM_PLATFORM_URLS = [platform.url]
    settings.CFM_STORAGE_URLS = [worker.s3]
    services.connection_put(user=alice.user, space=alice.space, data={
        "url": platform.url, "iam_url": platform.url, "api_key": "test-api-key-123", "space_id": "space-1",
        "storage": {"endpoint": worker.s3, "bucket": name, "access_key_id": "AK", "secret_access_key": "SK",
                    "connection_id": "conn-1"}})
    reg = archive_registration(alice, make_tiny_real(tmp_path / "tiny"), tmp_path)
    yield alice, reg, platform
    platform.poll_latency = 0.0


def post(client, actor, reg, name):
    return client.post("/api/v1/deployments", data=json.dumps({"registration": reg.id, "space": actor.space.id,
                                                               "serving_name": name}),
                       content_type="application/json", **actor.auth)


def state_of(dep_id: int, *states):
    from cfm.quota.models import Deployment

    row = Deployment.objects.filter(pk=dep_id).first()
    return row if row is not None and row.state in states else None


def test_deploy_runs_on_the_worker_to_ready(client, live):
    actor, reg, platform = live
    r = post(client, actor, reg, "on_worker")
    assert r.status_code == 201 and r.json()["status"] == "uploading"
    dep = wait_for(lambda: state_of(r.json()["id"], "ready", "failed"), timeout=60, what="ready")
    assert dep.state == "ready", dep.message_params
    assert dep.platform["inference_url"]


def test_a_worker_killed_while_initializing_is_taken_over(client, live, worker):
    actor, reg, platform = live
    platform.ready_after = 0.0
    platform.poll_latency = 8.0  # a look at the deployment outlives the 5-second lease
    dep_id = post(client, actor, reg, "killed_mid").json()["id"]
    wait_for(lambda: state_of(dep_id, "initializing"), timeout=60, what="initializing")
    poll = wait_for(lambda: platform.calls("GET", "/ml/v4/deployments/"), timeout=20, what="a poll in flight")[0]
    # The pool process that sent it (not the worker's embedded beat, which the sweeper needs)
    sockets = subprocess.run(["ss", "-Htnp", f"sport = :{poll.peer_port}"], capture_output=True, text=True).stdout
    pid = int(re.search(r"pid=(\d+)", sockets).group(1))
    os.kill(pid, signal.SIGKILL)  # mid-poll
    platform.poll_latency = 0.0
    dep = wait_for(lambda: state_of(dep_id, "ready", "failed"), timeout=60, what="ready after the kill")
    assert dep.state == "ready"
    assert [e.state for e in dep.events.all()].count("ready") == 1


def test_the_broker_down_during_deploy_answers_201_and_the_sweeper_sends_it_later(client, live):
    from cfm.quota.models import Deployment

    actor, reg, platform = live
    with broker_at(CLOSED_PORT):
        started = time.monotonic()
        r = post(client, actor, reg, "while_down")
        assert r.status_code == 201, r.content
        assert time.monotonic() - started < 3.0
        row = Deployment.objects.select_related("job").get(pk=r.json()["id"])
        assert (row.state, row.job.kind, row.job.status, row.job.enqueued_at) == (
            "uploading", "deployment", "queued", None)  # its job waits in the outbox
    dep = wait_for(lambda: state_of(row.id, "ready", "failed"), timeout=60, what="ready after the broker")
    assert dep.state == "ready"
