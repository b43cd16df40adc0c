# ruff: noqa: F811  (pytest fixtures imported from worker_support are redefined as arguments)
"""An inspection survives its worker killed with -9 mid-run: the whole REAL
Celery worker (main process, pool, beat) is killed, a new one is started,
its sweeper finds the expired lease, and it finishes the same run (attempt
2). On the real Redis and the test database. Prepare's is in
tests/preparation/test_prepare_worker.py, deployment tracking's in
tests/platform."""
from __future__ import annotations

import pytest
from modelfactory import LLAMA3_8B, make_model
from worker_support import alice, wait_for, wait_status, worker  # noqa: F401

from cfm.jobs.models import Job
from cfm.registry.models import Registration, SourceKind, Status

pytestmark = pytest.mark.services
API = "/api/v1"


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
    with worker.killed():
        worker.hub.latency = 0.0
        assert Registration.objects.get(pk=row.pk).status in (Status.FETCHING, Status.INSPECTING)
    done = wait_status(registration, timeout=45)
    assert done.status == Status.DONE, done.error_message
    assert done.report["parameters"] > 8e9
    finished = Job.objects.get(pk=job.pk)
    assert (done.job_id, finished.attempts, finished.status) == (job.pk, 2, "done")  # the same run, reclaimed
    assert _pid(finished) != _pid(job)
    assert f"inspection job {job.pk}: lease expired" in worker.text()
