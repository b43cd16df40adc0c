# ruff: noqa: F811  (pytest fixtures imported from worker_support are redefined as arguments)
"""Each kind of job survives its worker killed with -9 mid-run: the whole
REAL Celery worker (main process, pool, beat) is killed, a new one is
started, its sweeper finds the expired lease, and it finishes the same run
(attempt 2). On the real Redis and the test database."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from modelfactory import LLAMA3_8B, make_model
from safetensors.numpy import save_file
from worker_support import alice, wait_for, wait_status, worker  # noqa: F401

from cfm.jobs.models import Job
from cfm.preparation.models import PrepareJob
from cfm.registry.models import Registration, SourceKind, Status

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "preparation"))
from prep_builders import make_ttm  # noqa: E402

pytestmark = pytest.mark.services
API = "/api/v1"


@contextmanager
def killed_and_restarted(worker):
    """kill -9 of the worker now; a new worker when the block ends (also when it fails)."""
    worker.kill()
    try:
        yield
    finally:
        worker.restart()


def _pid(job: Job) -> int:
    return int(job.worker.rsplit(":", 1)[1])


def test_an_inspection_whose_worker_is_killed_mid_run_is_finished_by_a_restarted_worker(worker, alice, tmp_path):
    from cfm.registry.services import registration_create

    worker.hub.add_repo("org/killed-8b", make_model(tmp_path / "m", LLAMA3_8B, shards=2))
    worker.hub.latency = 4.0  # the job is mid-run (waiting for the Hub) when the worker dies
    registration, _ = registration_create(account=alice.account, user=alice.user, source_kind=SourceKind.HUB,
                                          source="org/killed-8b")
    row = wait_status(registration, statuses=("fetching", "inspecting"))
    job = Job.objects.get(pk=row.job_id)
    with killed_and_restarted(worker):
        worker.hub.latency = 0.0
        assert Registration.objects.get(pk=row.pk).status in (Status.FETCHING, Status.INSPECTING)
    done = wait_status(registration, timeout=45)
    assert done.status == Status.DONE, done.error_message
    assert done.report["parameters"] > 8e9
    finished = Job.objects.get(pk=job.pk)
    assert (done.job_id, finished.attempts, finished.status) == (job.pk, 2, "done")  # the same run, reclaimed
    assert _pid(finished) != _pid(job)
    assert f"inspection job {job.pk}: lease expired" in worker.text()


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
    with killed_and_restarted(worker):
        worker.hub.latency = 0.0
    body = wait_for(lambda: (lambda b: b if b["status"] in ("done", "failed", "cancelled") else None)(
        client.get(started["url"], **alice.auth).json()), 90, what="the Prepare run to end")
    assert body["status"] == "done", body["error"]
    assert (Path(body["storage"]["location"]) / "tsfm_config.json").is_file()
    finished = Job.objects.get(pk=job.pk)
    assert (PrepareJob.objects.get(pk=prep.pk).job_id, finished.attempts) == (job.pk, 2)
    assert _pid(finished) != _pid(job)
    assert f"prepare job {job.pk}: lease expired" in worker.text()
