# ruff: noqa: F811  (pytest fixtures imported from worker_support are redefined as arguments)
"""Prepare in the REAL Celery worker (subprocess) on the real Redis: a model
registered from the local Hub over the API, inspected by the worker, then
prepared by it (download from the Hub, tsfm_config.json, re-inspection,
storage in the worker's media folder), all watched through the API."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from prep_builders import make_ttm
from safetensors.numpy import save_file
from worker_support import alice, bob, wait_for, wait_status, worker  # noqa: F401

from cfm.jobs.models import Job
from cfm.preparation.models import PrepareJob
from cfm.registry.models import Registration

pytestmark = pytest.mark.services
API = "/api/v1"


def _job_state(client, actor, url, states):
    body = client.get(url, **actor.auth).json()
    return body if body["status"] in states else None


def test_the_worker_prepares_a_hub_model_started_from_the_api(worker, client, alice, bob, tmp_path):
    folder = make_ttm(tmp_path / "ttm")
    worker.hub.add_repo("ibm/ttm-prep", folder)
    r = client.post(f"{API}/registrations", data=json.dumps({"account": alice.account.pk, "source": "ibm/ttm-prep"}),
                    content_type="application/json", **alice.auth)
    registration = wait_status(Registration(pk=r.json()["id"]))
    assert registration.status == "done" and registration.report["preparation"] == ["add_tsfm_config"]

    started = client.post(f"{API}/registrations/{registration.pk}/prepare", **alice.auth)
    assert started.status_code == 202
    url = started.json()["url"]
    assert client.get(url, **bob.auth).status_code == 404
    done = wait_for(lambda: _job_state(client, alice, url, ("done", "failed", "cancelled")), 60,
                    what="the Prepare job to end")
    assert done["status"] == "done", done["error"]
    assert done["new_report"]["deployable"] is True

    stored = Path(done["storage"]["location"])
    assert stored.is_relative_to(worker.media)  # the worker's storage, not the test process's
    assert json.loads((stored / "tsfm_config.json").read_text())["maximum_context_length"] == 1024
    sums = dict(reversed(line.split("  ", 1)) for line in (stored / "SHA256SUMS").read_text().splitlines())
    for name in ("config.json", "model.safetensors"):
        assert sums[name] == hashlib.sha256((folder / name).read_bytes()).hexdigest()  # the Hub's bytes, unchanged
    job = PrepareJob.objects.get(pk=done["id"]).job
    assert job.attempts == 1 and job.claim == "" and job.lease_expires_at is None


def test_a_prepare_job_cancelled_in_the_worker_stops_and_a_new_one_finishes(worker, client, alice, tmp_path):
    folder = make_ttm(tmp_path / "ttm-big")
    save_file({"backbone.w": np.zeros(12 * 2**20 // 4, dtype=np.float32)}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    worker.hub.add_repo("ibm/ttm-slow", folder)
    r = client.post(f"{API}/registrations", data=json.dumps({"account": alice.account.pk, "source": "ibm/ttm-slow"}),
                    content_type="application/json", **alice.auth)
    registration = wait_status(Registration(pk=r.json()["id"]))
    assert registration.status == "done", registration.error_message

    worker.hub.latency = 1.0  # each request of the download waits: time to cancel it
    url = client.post(f"{API}/registrations/{registration.pk}/prepare", **alice.auth).json()["url"]
    wait_for(lambda: _job_state(client, alice, url, ("running",)), 30, what="the job to run")
    cancel = client.post(url + "/cancel", **alice.auth)
    assert cancel.status_code == 202
    ended = wait_for(lambda: _job_state(client, alice, url, ("cancelled", "done", "failed")), 30,
                     what="the job to stop")
    assert ended["status"] == "cancelled" and ended["error"]["code"] == "cancelled" and ended["storage"] is None

    worker.hub.latency = 0.0
    again = client.post(f"{API}/registrations/{registration.pk}/prepare", **alice.auth).json()
    assert again["id"] != ended["id"]
    done = wait_for(lambda: _job_state(client, alice, again["url"], ("done", "failed", "cancelled")), 60,
                    what="the second job to end")
    assert done["status"] == "done", done["error"]
    assert (Path(done["storage"]["location"]) / "tsfm_config.json").is_file()


def test_a_prepare_run_whose_worker_is_killed_mid_download_is_finished_by_a_restarted_worker(worker, client, alice,
                                                                                            tmp_path):
    folder = make_ttm(tmp_path / "ttm-killed")
    save_file({"backbone.w": np.zeros(12 * 2**20 // 4, dtype=np.float32)}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    worker.hub.add_repo("ibm/ttm-killed", folder)
    r = client.post(f"{API}/registrations", data=json.dumps({"account": alice.account.pk, "source": "ibm/ttm-killed"}),
                    content_type="application/json", **alice.auth)
    registration = wait_status(Registration(pk=r.json()["id"]))
    assert registration.status == "done", registration.error_message

    worker.hub.latency = 1.0  # each request of the download waits: the run is mid-download when the worker dies
    started = client.post(f"{API}/registrations/{registration.pk}/prepare", **alice.auth).json()
    prep = wait_for(lambda: PrepareJob.objects.filter(pk=started["id"], status="running", job__worker__gt="")
                    .select_related("job").first(), 30, what="the Prepare run to start")
    job = prep.job
    with worker.killed():
        worker.hub.latency = 0.0
    body = wait_for(lambda: _job_state(client, alice, started["url"], ("done", "failed", "cancelled")), 90,
                    what="the Prepare run to end")
    assert body["status"] == "done", body["error"]
    assert (Path(body["storage"]["location"]) / "tsfm_config.json").is_file()
    finished = Job.objects.get(pk=job.pk)
    assert (PrepareJob.objects.get(pk=prep.pk).job_id, finished.attempts) == (job.pk, 2)
    assert finished.worker.rsplit(":", 1)[1] != job.worker.rsplit(":", 1)[1]  # another process finished it
    assert f"prepare job {job.pk}: lease expired" in worker.text()
