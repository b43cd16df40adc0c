"""The one job runtime (cfm.jobs.runtime) with a kind of the test's own,
run in this process against the real database (committed rows: the
heartbeat thread has a connection of its own). The kinds of the app run in
a real worker in test_worker_killed.py, tests/registry and tests/preparation."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from actors import make_actor
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.utils import timezone
from needs import need
from worker_support import committed_db, own_broker  # noqa: F401

from cfm.jobs import runtime, sweeper
from cfm.jobs.models import Job, JobStatus
from cfm.jobs.runtime import JobError, JobKind, JobStopped, Outcome, RunningJob
from cfm.registry.models import Registration, SourceKind

#: what the test kind does, per subject id
SCRIPT: dict[int, Callable[[RunningJob], Outcome]] = {}


class Scripted(JobKind):
    """A kind whose run is whatever the test put in SCRIPT. Its subject is a
    registration, whose summary it leaves alone except `error_message`."""

    name = "test-scripted"
    label = "test job"
    subject = Registration

    def run(self, job: RunningJob) -> Outcome:
        return SCRIPT[job.subject_id](job)

    def summary(self, job: Job) -> dict:
        return {"progress_step": job.progress_step}


runtime.register(Scripted())


@pytest.fixture
def subject(committed_db, own_broker):  # noqa: F811
    owner = make_actor("owner")
    row = Registration.objects.create(account=owner.account, source_kind=SourceKind.HUB, source="org/x")
    yield row
    SCRIPT.pop(row.pk, None)


def submit(subject) -> Job:
    return runtime.submit(Scripted.name, subject_id=subject.pk)


def due_now(job: Job) -> None:
    """The backoff or poll delay has passed."""
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now() - timedelta(seconds=1))


def test_a_run_is_claimed_by_exactly_one_of_many_racing_deliveries(subject):
    need(connection.vendor == "postgresql", "the claim race needs PostgreSQL (set DATABASE_URL)")
    runs = []
    SCRIPT[subject.pk] = lambda job: (runs.append(job.claim), time.sleep(0.3), Outcome.done())[-1]
    job = submit(subject)
    results: list[str] = []
    barrier = threading.Barrier(6)

    def deliver():
        barrier.wait()
        try:
            results.append(runtime.run(job_id=job.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == ["done"] + ["skipped"] * 5
    job.refresh_from_db()
    assert (job.status, job.attempts, len(runs), job.claim) == (JobStatus.DONE, 1, 1, "")


def test_an_expired_lease_is_reclaimed_and_the_next_delivery_finishes(subject, settings):
    settings.CFM_JOB_MAX_ATTEMPTS = 3
    SCRIPT[subject.pk] = lambda job: Outcome.done()
    job = submit(subject)
    # a worker claimed it, then died (kill -9): nobody renews the lease
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, claim="dead", attempts=1, worker="host:1",
                                         lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert runtime.run(job_id=job.pk) == "skipped"  # not queued: a second delivery waits for the sweeper
    assert sweeper.sweep().reclaimed == 1
    job.refresh_from_db()
    assert (job.status, job.claim, job.progress_step) == (JobStatus.QUEUED, "", "requeued")
    assert runtime.run(job_id=job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.DONE, 2)


def test_a_reclaimed_worker_that_comes_back_is_fenced_out(subject, settings):
    """A worker only slow, not dead: its lease expired and the job was
    reclaimed; its later writes change nothing."""
    settings.CFM_JOB_LEASE_SECONDS = 1  # heartbeat every 1/3 s

    def slow(job: RunningJob) -> Outcome:
        # As if this worker had stalled past its lease: expired, swept, claimed again elsewhere.
        Job.objects.filter(pk=job.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        sweeper.sweep()
        Job.objects.filter(pk=job.id).update(status=JobStatus.RUNNING, claim="the-new-worker")
        deadline = time.monotonic() + 5
        while not job.should_stop() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.should_stop()
        with pytest.raises(JobStopped):
            job.progress("still-here")
        return Outcome.done(error_message="written by the stale worker")

    SCRIPT[subject.pk] = slow
    job = submit(subject)
    assert runtime.run(job_id=job.pk) == "lost"
    job.refresh_from_db()
    assert (job.status, job.claim) == (JobStatus.RUNNING, "the-new-worker")
    assert Registration.objects.get(pk=subject.pk).error_message == ""


def test_a_live_worker_renews_its_lease_and_the_sweeper_leaves_it(subject, settings):
    settings.CFM_JOB_LEASE_SECONDS = 1

    def long_run(job: RunningJob) -> Outcome:
        time.sleep(2.5)  # well past the 1 s lease it was claimed with
        assert sweeper.sweep().reclaimed == 0
        return Outcome.done()

    SCRIPT[subject.pk] = long_run
    job = submit(subject)
    assert runtime.run(job_id=job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.DONE, 1)


def test_a_transient_error_is_retried_with_backoff_until_the_attempts_are_used(subject, settings):
    settings.CFM_JOB_MAX_ATTEMPTS = 2
    settings.CFM_JOB_RETRY_BACKOFF = 60

    def hub_down(job: RunningJob) -> Outcome:
        raise JobError("hub_unavailable", "The Hub could not be reached.")

    SCRIPT[subject.pk] = hub_down
    job = submit(subject)
    assert runtime.run(job_id=job.pk) == "retry"
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error_code, job.progress_step) == (JobStatus.QUEUED, 1, "hub_unavailable",
                                                                             "retrying")
    # the backoff: between a quarter of CFM_JOB_RETRY_BACKOFF and all of it, and nobody runs it before
    wait = (job.run_after - timezone.now()).total_seconds()
    assert 10 < wait <= 60
    assert runtime.run(job_id=job.pk) == "skipped"
    Job.objects.filter(pk=job.pk).update(enqueued_at=None)  # as if the broker had been down at the retry
    assert sweeper.sweep().queued == 0  # not due yet: the sweeper does not send it either
    due_now(job)
    assert sweeper.sweep().queued == 1
    assert runtime.run(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error_code) == (JobStatus.FAILED, 2, "hub_unavailable")
    assert job.error_message == "The Hub could not be reached." and job.finished_at is not None


def test_a_permanent_error_fails_at_once(subject, settings):
    settings.CFM_JOB_MAX_ATTEMPTS = 5

    def missing(job: RunningJob) -> Outcome:
        raise JobError("repo_not_found", "There is no repo org/x on the Hub.")

    SCRIPT[subject.pk] = missing
    job = submit(subject)
    assert runtime.run(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error_code) == (JobStatus.FAILED, 1, "repo_not_found")


def test_lost_workers_past_the_attempts_fail_the_job_with_the_reason(subject, settings):
    settings.CFM_JOB_MAX_ATTEMPTS = 2
    job = submit(subject)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, claim="dead", attempts=2,
                                         lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert sweeper.sweep().failed == 1
    job.refresh_from_db()
    assert (job.status, job.error_code, job.claim) == (JobStatus.FAILED, "worker_lost", "")
    assert job.error_message == ("The test job was interrupted 2 times (its worker stopped or ran out of time); "
                                 "it was not tried again.")


def test_poll_again_queues_the_run_for_later_without_using_an_attempt(subject, settings):
    settings.CFM_JOB_MAX_ATTEMPTS = 1  # a poll that used an attempt would leave none
    settings.CFM_SWEEP_INTERVAL = 30
    polls = []

    def track(job: RunningJob) -> Outcome:
        polls.append(job.job.attempts)
        if len(polls) < 4:
            return Outcome.poll(30, step="platform_initializing")
        return Outcome.done()

    SCRIPT[subject.pk] = track
    job = submit(subject)
    for _ in range(3):
        assert runtime.run(job_id=job.pk) == "poll"
        job.refresh_from_db()
        assert (job.status, job.attempts, job.progress_step) == (JobStatus.QUEUED, 0, "platform_initializing")
        assert 25 < (job.run_after - timezone.now()).total_seconds() <= 30
        # the next poll is a row, not a message: a worker restarted meanwhile loses nothing, and an early
        # delivery does not run it before its time; the sweeper sends it once it is due
        assert job.enqueued_at is None
        assert runtime.run(job_id=job.pk) == "skipped"
        assert sweeper.sweep().queued == 0
        due_now(job)
        assert sweeper.sweep().queued == 1
    assert runtime.run(job_id=job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.attempts, polls) == (JobStatus.DONE, 1, [1, 1, 1, 1])


def test_a_waiting_run_is_never_claimed_nor_swept_until_resumed(subject):
    answers = []

    def review(job: RunningJob) -> Outcome:
        answers.append(job.job.status)
        return Outcome.wait(step="needs_answer") if len(answers) == 1 else Outcome.done()

    SCRIPT[subject.pk] = review
    job = submit(subject)
    assert runtime.run(job_id=job.pk) == "waiting"
    job.refresh_from_db()
    assert (job.status, job.progress_step, job.attempts, job.finished_at) == (JobStatus.WAITING, "needs_answer", 0,
                                                                               None)
    assert runtime.run(job_id=job.pk) == "skipped"
    assert sweeper.sweep().queued == 0
    assert runtime.resume(job.pk) is True and runtime.resume(job.pk) is False
    assert runtime.run(job_id=job.pk) == "done"
    assert Job.objects.get(pk=job.pk).status == JobStatus.DONE


def test_cancel_ends_the_run_at_once_and_the_running_worker_stops(subject):
    def cancelled_meanwhile(job: RunningJob) -> Outcome:
        runtime.cancel(job.id, message="Cancelled by alice.")  # another request, while this runs
        deadline = time.monotonic() + 5
        while not job.should_stop() and time.monotonic() < deadline:
            time.sleep(0.05)  # the heartbeat notices within a second
        job.check()
        return Outcome.done()

    SCRIPT[subject.pk] = cancelled_meanwhile
    job = submit(subject)
    assert runtime.run(job_id=job.pk) == "lost"
    job.refresh_from_db()
    assert (job.status, job.error_code, job.error_message, job.claim) == (JobStatus.CANCELLED, "cancelled",
                                                                          "Cancelled by alice.", "")
    # a queued run is cancelled as well, and never claimed afterwards
    queued = submit(subject)
    runtime.cancel(queued.pk)
    assert runtime.run(job_id=queued.pk) == "skipped"
    assert Job.objects.get(pk=queued.pk).status == JobStatus.CANCELLED


def test_a_rerun_adds_a_run_and_keeps_the_history_which_never_overwrites_the_latest(subject):
    SCRIPT[subject.pk] = lambda job: Outcome.done(step=f"run-{job.id}")
    first = submit(subject)
    assert runtime.run(job_id=first.pk) == "done"
    assert Registration.objects.get(pk=subject.pk).progress_step == f"run-{first.pk}"
    second = submit(subject)
    stale = submit(subject)  # queued, then superseded before it ran
    third = submit(subject)
    assert Registration.objects.get(pk=subject.pk).job_id == third.pk
    assert runtime.run(job_id=stale.pk) == "done"  # a superseded run may still finish...
    assert Registration.objects.get(pk=subject.pk).progress_step == ""  # ...without touching the summary
    assert runtime.run(job_id=third.pk) == "done"
    assert Registration.objects.get(pk=subject.pk).progress_step == f"run-{third.pk}"
    runs = list(Job.objects.filter(kind=Scripted.name, subject_id=subject.pk).order_by("id")
                .values_list("pk", "status"))
    assert runs == [(first.pk, "done"), (second.pk, "queued"), (stale.pk, "done"), (third.pk, "done")]
    # deleting the subject deletes its runs
    Registration.objects.filter(pk=subject.pk).delete()
    assert not Job.objects.filter(kind=Scripted.name, subject_id=subject.pk).exists()


def test_the_soft_time_limit_and_a_bug_end_the_run_with_a_message_and_no_traceback(subject, settings):
    def too_slow(job: RunningJob) -> Outcome:
        raise SoftTimeLimitExceeded()

    SCRIPT[subject.pk] = too_slow
    job = submit(subject)
    assert runtime.run(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert (job.error_code, job.error_message) == (
        "time_limit", f"The test job took longer than {settings.CELERY_TASK_SOFT_TIME_LIMIT} seconds and was stopped.")

    def broken(job: RunningJob) -> Outcome:
        raise KeyError("secret internals")

    SCRIPT[subject.pk] = broken
    job = submit(subject)
    assert runtime.run(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert (job.error_code, job.error_message) == (
        "internal", "An internal error stopped the test job; the operators have the details.")


def test_a_job_of_an_unknown_kind_fails_with_a_message(subject):
    job = Job.objects.create(kind="no-such-kind", subject_id=subject.pk)
    assert runtime.run(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "internal")


def test_progress_is_written_by_the_heartbeat_and_mirrored_on_the_subject(subject, settings):
    settings.CFM_JOB_LEASE_SECONDS = 1
    seen = {}

    def steps(job: RunningJob) -> Outcome:
        job.progress("reading_headers", 2, 5, bytes_done=100, bytes_total=1000, detail={"files": {"a": 1}})
        time.sleep(0.8)  # a few heartbeats
        seen["job"] = Job.objects.filter(pk=job.id).values(
            "progress_step", "progress_done", "progress_total", "bytes_done", "bytes_total", "progress_detail").get()
        seen["subject"] = Registration.objects.get(pk=job.subject_id).progress_step
        return Outcome.done()

    SCRIPT[subject.pk] = steps
    runtime.run(job_id=submit(subject).pk)
    assert seen["job"] == {"progress_step": "reading_headers", "progress_done": 2, "progress_total": 5,
                           "bytes_done": 100, "bytes_total": 1000, "progress_detail": {"files": {"a": 1}}}
    assert seen["subject"] == "reading_headers"
