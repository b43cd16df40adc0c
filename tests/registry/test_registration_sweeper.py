# ruff: noqa: F811  (pytest fixtures imported from actors/worker_support are redefined as arguments)
"""The sweeper on inspection jobs: leases (a worker killed with -9 mid-job is
reclaimed; a live one renews its lease), bounded attempts, the outbox, lost
messages. The runtime's own tests are in tests/jobs/."""
from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from modelfactory import LLAMA3_8B, make_model
from worker_support import alice, wait_for, wait_status, worker  # noqa: F401

from cfm.jobs import runtime, sweeper
from cfm.jobs.models import Job, JobStatus
from cfm.registry.models import Registration, SourceKind, Status


@pytest.mark.services
def test_a_worker_killed_mid_job_is_reclaimed_and_a_live_one_keeps_its_lease(worker, alice, tmp_path):
    from cfm.registry.services import registration_create

    worker.hub.add_repo("org/slow-8b", make_model(tmp_path / "m", LLAMA3_8B, shards=2))
    worker.hub.latency = 8.0  # the first Hub request alone outlives the job's 5-second lease
    registration, _ = registration_create(account=alice.account, user=alice.user, source_kind=SourceKind.HUB,
                                          source="org/slow-8b")
    row = wait_status(registration, statuses=("fetching", "inspecting"))
    job = row.job
    # alive past its lease: the heartbeat renews it, the sweeper leaves it alone
    time.sleep(max(0.0, (job.started_at + timedelta(seconds=6) - timezone.now()).total_seconds()))
    job.refresh_from_db()
    row.refresh_from_db()
    assert row.status in (Status.FETCHING, Status.INSPECTING) and job.attempts == 1
    assert job.lease_expires_at > timezone.now()
    pid = int(job.worker.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)  # the pool process running the job, mid-job
    worker.hub.latency = 0.0
    done = wait_status(registration, timeout=30)
    assert (done.status, done.attempts) == (Status.DONE, 2), done.error_message
    assert done.job_id == job.pk  # the same run, reclaimed
    assert int(done.job.worker.rsplit(":", 1)[1]) != pid
    assert f"inspection job {job.pk}: lease expired" in worker.text()


def _running(alice_account, *, attempts: int, expired: bool = True) -> Registration:
    row = Registration.objects.create(account=alice_account, source_kind=SourceKind.HUB, source="org/x",
                                      status=Status.INSPECTING)
    job = Job.objects.create(kind="inspection", subject_id=row.pk, status=JobStatus.RUNNING, attempts=attempts,
                             claim="dead-worker", progress_step="checking",
                             lease_expires_at=timezone.now() + timedelta(seconds=-1 if expired else 60))
    Registration.objects.filter(pk=row.pk).update(job=job)
    return Registration.objects.get(pk=row.pk)


def _queued(account, source: str, **job_fields) -> Registration:
    row = Registration.objects.create(account=account, source_kind=SourceKind.HUB, source=source)
    job = Job.objects.create(kind="inspection", subject_id=row.pk, **job_fields)
    Registration.objects.filter(pk=row.pk).update(job=job)
    return Registration.objects.get(pk=row.pk)


@pytest.fixture
def owner(db):
    from actors import make_actor

    return make_actor("owner")


def test_an_expired_lease_is_requeued_while_attempts_remain(owner, settings):
    settings.CFM_JOB_MAX_ATTEMPTS = 3
    row = _running(owner.account, attempts=1)
    live = _running(owner.account, attempts=1, expired=False)
    result = sweeper.sweep()
    row.refresh_from_db()
    live.refresh_from_db()
    assert result.reclaimed == 1
    assert (row.status, row.job.claim, row.progress_step) == (Status.QUEUED, "", "requeued")
    assert (live.status, live.job.claim) == (Status.INSPECTING, "dead-worker")


def test_an_expired_lease_past_the_last_attempt_fails_with_the_reason(owner, settings):
    settings.CFM_JOB_MAX_ATTEMPTS = 3
    row = _running(owner.account, attempts=3)
    assert sweeper.sweep().failed == 1
    row.refresh_from_db()
    assert (row.status, row.error_code) == (Status.FAILED, "timeout")
    assert "interrupted 3 times" in row.error_message
    assert (row.job.status, row.job.error_code) == (JobStatus.FAILED, "worker_lost")


def test_the_outbox_is_queued_but_not_before_a_retry_is_due(owner, settings):
    settings.CFM_JOB_LEASE_SECONDS = 60
    outbox = _queued(owner.account, "org/a")
    backing_off = _queued(owner.account, "org/b", run_after=timezone.now() + timedelta(minutes=5))
    recent = _queued(owner.account, "org/c", enqueued_at=timezone.now())
    lost = _queued(owner.account, "org/d", enqueued_at=timezone.now() - timedelta(hours=1))
    if not runtime.enqueue(recent.job_id):  # the broker of this run
        pytest.skip("no broker reachable")
    queued = sweeper.sweep().queued
    assert queued == 2
    for row in (outbox, backing_off, recent, lost):
        row.refresh_from_db()
    assert outbox.job.enqueued_at is not None and backing_off.job.enqueued_at is None
    assert lost.job.enqueued_at > timezone.now() - timedelta(minutes=1)  # a lost message is sent again


def test_the_sweep_leaves_finished_jobs_alone(owner):
    done = _queued(owner.account, "org/a", status=JobStatus.DONE,
                   lease_expires_at=timezone.now() - timedelta(hours=1))
    failed = _queued(owner.account, "org/b", status=JobStatus.FAILED)
    Registration.objects.filter(pk=done.pk).update(status=Status.DONE)
    Registration.objects.filter(pk=failed.pk).update(status=Status.FAILED)
    result = sweeper.sweep()
    assert (result.reclaimed, result.failed, result.queued) == (0, 0, 0)
    for row, before in ((done, Status.DONE), (failed, Status.FAILED)):
        row.refresh_from_db()
        assert row.status == before


def test_the_sweep_removes_half_written_uploads_only_when_old(owner, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    old, fresh = tmp_path / "uploads" / ".incoming" / "old", tmp_path / "uploads" / ".incoming" / "fresh"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "part.tar").write_bytes(b"x")
    long_ago = time.time() - 7 * 3600
    os.utime(old, (long_ago, long_ago))
    sweeper.sweep()
    assert not old.exists() and fresh.exists()
