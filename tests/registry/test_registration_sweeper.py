# ruff: noqa: F811  (pytest fixtures imported from actors/worker_support are redefined as arguments)
"""The sweeper: leases (a worker killed with -9 mid-job is reclaimed; a live
one renews its lease), bounded attempts, the outbox, lost messages."""
from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from modelfactory import LLAMA3_8B, make_model
from worker_support import alice, wait_for, wait_status, worker  # noqa: F401

from cfm.registry import jobs
from cfm.registry.models import Registration, SourceKind, Status


@pytest.mark.services
def test_a_worker_killed_mid_job_is_reclaimed_and_a_live_one_keeps_its_lease(worker, alice, tmp_path):
    from cfm.registry.services import registration_create

    worker.hub.add_repo("org/slow-8b", make_model(tmp_path / "m", LLAMA3_8B, shards=2))
    worker.hub.latency = 8.0  # the first Hub request alone outlives the job's 5-second lease
    registration, _ = registration_create(account=alice.account, user=alice.user, source_kind=SourceKind.HUB,
                                          source="org/slow-8b")
    row = wait_status(registration, statuses=("fetching", "inspecting"))
    # alive past its lease: the heartbeat renews it, the sweeper leaves it alone
    time.sleep(max(0.0, (row.started_at + timedelta(seconds=6) - timezone.now()).total_seconds()))
    row.refresh_from_db()
    assert row.status in (Status.FETCHING, Status.INSPECTING) and row.attempts == 1
    assert row.lease_expires_at > timezone.now()
    pid = int(row.worker.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)  # the pool process running the job, mid-job
    worker.hub.latency = 0.0
    done = wait_status(registration, timeout=30)
    assert (done.status, done.attempts) == (Status.DONE, 2), done.error_message
    assert int(done.worker.rsplit(":", 1)[1]) != pid
    assert f"registration {registration.pk}: lease expired" in worker.text()


def _running(alice_account, *, attempts: int, expired: bool = True) -> Registration:
    return Registration.objects.create(
        account=alice_account, source_kind=SourceKind.HUB, source="org/x", status=Status.INSPECTING,
        attempts=attempts, claim="dead-worker",
        lease_expires_at=timezone.now() + timedelta(seconds=-1 if expired else 60))


@pytest.fixture
def owner(db):
    from actors import make_actor

    return make_actor("owner")


def test_an_expired_lease_is_requeued_while_attempts_remain(owner, settings):
    settings.CFM_JOB_MAX_ATTEMPTS = 3
    row = _running(owner.account, attempts=1)
    live = _running(owner.account, attempts=1, expired=False)
    result = jobs.sweep()
    row.refresh_from_db()
    live.refresh_from_db()
    assert result.reclaimed == 1
    assert (row.status, row.claim) == (Status.QUEUED, "")
    assert (live.status, live.claim) == (Status.INSPECTING, "dead-worker")


def test_an_expired_lease_past_the_last_attempt_fails_with_the_reason(owner, settings):
    settings.CFM_JOB_MAX_ATTEMPTS = 3
    row = _running(owner.account, attempts=3)
    assert jobs.sweep().failed == 1
    row.refresh_from_db()
    assert (row.status, row.error_code) == (Status.FAILED, "timeout")
    assert "interrupted 3 times" in row.error_message


def test_the_outbox_is_queued_but_not_before_a_retry_is_due(owner, settings):
    settings.CFM_JOB_LEASE_SECONDS = 60
    outbox = Registration.objects.create(account=owner.account, source_kind=SourceKind.HUB, source="org/a")
    backing_off = Registration.objects.create(account=owner.account, source_kind=SourceKind.HUB, source="org/b",
                                              not_before=timezone.now() + timedelta(minutes=5))
    recent = Registration.objects.create(account=owner.account, source_kind=SourceKind.HUB, source="org/c",
                                         enqueued_at=timezone.now())
    lost = Registration.objects.create(account=owner.account, source_kind=SourceKind.HUB, source="org/d",
                                       enqueued_at=timezone.now() - timedelta(hours=1))
    if not jobs.enqueue(registration_id=0):  # the broker of this run
        pytest.skip("no broker reachable")
    queued = jobs.sweep().queued
    assert queued == 2
    for row in (outbox, backing_off, recent, lost):
        row.refresh_from_db()
    assert outbox.enqueued_at is not None and backing_off.enqueued_at is None
    assert lost.enqueued_at > timezone.now() - timedelta(minutes=1)  # a lost message is sent again


def test_the_sweep_leaves_finished_jobs_alone(owner):
    done = Registration.objects.create(account=owner.account, source_kind=SourceKind.HUB, source="org/a",
                                       status=Status.DONE, lease_expires_at=timezone.now() - timedelta(hours=1))
    failed = Registration.objects.create(account=owner.account, source_kind=SourceKind.HUB, source="org/b",
                                         status=Status.FAILED)
    result = jobs.sweep()
    assert (result.reclaimed, result.failed) == (0, 0)
    for row in (done, failed):
        before = row.status
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
    jobs.sweep()
    assert not old.exists() and fresh.exists()
