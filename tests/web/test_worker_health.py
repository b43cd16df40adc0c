# ruff: noqa: F811  (pytest fixtures imported from actors are redefined as arguments)
"""Worker heartbeats (finding 10 of issue 11): /healthz reports the live
workers and the oldest queued job, and is degraded when work is queued and
no worker has written a heartbeat for a minute; the registration page says
it waits for a worker."""
from __future__ import annotations

from datetime import timedelta

import pytest
from actors import alice  # noqa: F401
from django.utils import timezone
from worker_support import worker  # noqa: F401

from cfm.jobs import runtime
from cfm.jobs.models import Job
from cfm.preparation.models import PrepareJob
from cfm.registry.models import Registration, SourceKind, Status
from cfm.workers.heartbeat import HeartbeatThread, heartbeat_write, workers_live
from cfm.workers.models import WorkerHeartbeat


@pytest.fixture(autouse=True)
def no_workers(request):
    """Not the session's real worker (it may run in this test database): this
    test decides which heartbeats exist. Inside the test's transaction, undone after."""
    if "worker" in request.fixturenames:
        yield
        return
    request.getfixturevalue("db")
    WorkerHeartbeat.objects.all().delete()
    yield


def _queued(actor, minutes_ago: float = 2) -> Registration:
    """A registration whose inspection job was submitted `minutes_ago` (in this test's transaction, never sent)."""
    reg = Registration.objects.create(account=actor.account, created_by=actor.user, source_kind=SourceKind.HUB,
                                      source="org/waiting", revision="main", status=Status.QUEUED)
    job = runtime.submit("inspection", subject_id=reg.pk, owner=actor.user)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes_ago))
    return Registration.objects.get(pk=reg.pk)


def _beat(name: str, queues: list[str], seconds_ago: float) -> None:
    heartbeat_write(name=name, queues=queues, pid=1)
    WorkerHeartbeat.objects.filter(name=name).update(seen_at=timezone.now() - timedelta(seconds=seconds_ago))


def test_queued_work_and_no_worker_is_degraded_with_the_oldest_age(client, alice):
    _queued(alice, minutes_ago=3)
    body = client.get("/healthz").json()
    assert body["status"] == "degraded" and body["workers"]["ok"] is False
    assert body["workers"]["stalled"] == ["celery"] and body["workers"]["live"] == []
    assert body["workers"]["queues"]["celery"]["queued"] == 1
    assert body["workers"]["queues"]["celery"]["oldest_age_s"] >= 180


def test_a_heartbeat_older_than_a_minute_does_not_count(client, alice):
    _queued(alice)
    _beat("celery@gone", ["celery", "cfm-prepare"], seconds_ago=61)
    assert client.get("/healthz").json()["workers"]["stalled"] == ["celery"]
    _beat("celery@here", ["celery"], seconds_ago=5)
    body = client.get("/healthz").json()
    assert body["workers"]["ok"] is True and [w["name"] for w in body["workers"]["live"]] == ["celery@here"]


def test_a_prepare_job_needs_a_worker_on_its_own_queue(client, alice):
    reg = Registration.objects.create(account=alice.account, created_by=alice.user, source_kind=SourceKind.HUB,
                                      source="org/p", revision="main", status=Status.DONE, report={})
    prep = PrepareJob.objects.create(registration=reg, account=alice.account, created_by=alice.user)
    runtime.submit("prepare", subject_id=prep.pk, owner=alice.user)
    _beat("celery@inspections", ["celery"], seconds_ago=1)
    assert client.get("/healthz").json()["workers"]["stalled"] == ["cfm-prepare"]


def test_nothing_queued_is_ok_without_workers(client, db):
    body = client.get("/healthz").json()
    assert body["workers"]["ok"] is True and body["workers"]["stalled"] == []


def test_the_registration_page_says_it_waits_for_a_worker(client, alice):
    reg = _queued(alice)
    client.force_login(alice.user)
    assert 'id="waiting-for-worker"' in client.get(f"/models/{reg.pk}/").content.decode()
    _beat("celery@back", ["celery"], seconds_ago=1)
    assert 'id="waiting-for-worker"' not in client.get(f"/models/{reg.pk}/live/").content.decode()


def test_the_thread_writes_and_removes_its_row(transactional_db, settings):
    settings.CFM_HEARTBEAT_INTERVAL = 1
    thread = HeartbeatThread(name="celery@thread", queues=["celery"])
    thread.start()
    try:
        deadline = timezone.now() + timedelta(seconds=5)
        while not workers_live() and timezone.now() < deadline:
            pass
        assert [w.name for w in workers_live(queue="celery")] == ["celery@thread"]
        assert workers_live(queue="cfm-prepare") == []
    finally:
        thread.stop()
    assert not WorkerHeartbeat.objects.exists()


@pytest.mark.services
def test_the_real_worker_writes_its_heartbeat(worker, client):
    """The session's real Celery worker (tests/worker_support.py) is seen live, with its queues."""
    from worker_support import wait_for

    wait_for(lambda: any(w.name.startswith("tests-") for w in workers_live(queue="celery")), timeout=20,
             what="the worker's heartbeat")
    live = client.get("/healthz").json()["workers"]["live"]
    assert any(w["name"].startswith("tests-") and "celery" in w["queues"] for w in live)
