"""The runtime: submit, claim, lease, heartbeat, retry, poll, wait and
cancel, implemented once for every kind of job (kinds.py is what a kind
declares, sweeper.py reclaims and re-sends; cfm/jobs/__init__.py says how a
kind plugs in).

    submit ──▶ queued ──claim──▶ running ──▶ done / failed / cancelled
                 ▲                  │  ├──▶ waiting (a pause) ──resume──▶ queued
                 │                  │  └──▶ queued + run_after (poll again: no attempt used)
                 └── transient error (backoff), expired lease (sweeper) ──┘

- `submit` saves the Job row and queues its message when the transaction
  commits; a broker that is down leaves the row in the outbox
  (`enqueued_at` null), and the sweeper sends it once the broker is back.
- `run` claims with `UPDATE … WHERE id=? AND status='queued'`: a second
  delivery finds nothing to do. The claim is a random id; every later write
  is `… WHERE claim=?`, so a worker whose job was reclaimed is fenced out.
- A heartbeat thread renews the lease, writes the buffered progress and
  mirrors it onto the subject row; when its claim is gone (cancelled,
  reclaimed) the run is told to stop. A worker killed with -9 stops renewing,
  and the sweeper reclaims the job once the lease expired.
- Errors: a `JobError` whose code is in TRANSIENT_CODES is retried with
  backoff and jitter while attempts remain (CFM_JOB_MAX_ATTEMPTS); any other
  JobError fails the job with its code and message; Celery's soft time limit
  fails it as `time_limit`; anything else as `internal` (the traceback goes
  to the log, never to the user). A worker lost too often fails it as
  `worker_lost`.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from datetime import timedelta
from typing import Any, Literal

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from .kinds import _KINDS, TRANSIENT_CODES, JobError, JobKind, JobStopped, Outcome, kind_of, register
from .models import Job, JobStatus

__all__ = ["JobError", "JobKind", "JobStopped", "Outcome", "RunningJob", "TRANSIENT_CODES", "cancel", "enqueue",
           "kind_of", "register", "resume", "run", "submit"]

log = logging.getLogger(__name__)

def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease() -> timedelta:
    return timedelta(seconds=settings.CFM_JOB_LEASE_SECONDS)


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: after the first attempt up to
    CFM_JOB_RETRY_BACKOFF seconds, then twice as long each time, at most 5 min."""
    ceiling = min(300.0, settings.CFM_JOB_RETRY_BACKOFF * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 4, ceiling)


def broker_errors() -> tuple[type[BaseException], ...]:
    """What sending a message raises when the broker is down (the kombu and
    redis errors, sockets), and nothing else: a bug is not an outage."""
    from kombu.exceptions import OperationalError

    errors: list[type[BaseException]] = [OperationalError, OSError, TimeoutError]
    try:
        import redis.exceptions

        errors.append(redis.exceptions.RedisError)
    except ImportError:  # the filesystem broker needs no redis
        pass
    return tuple(errors)


def _soft_time_limit() -> type[BaseException]:
    from celery.exceptions import SoftTimeLimitExceeded

    return SoftTimeLimitExceeded


# --- the subject's mirror -----------------------------------------------------------------------------------

def _mirror(job: Job, **extra: Any) -> None:
    """Writes the kind's summary of `job` (and `extra`) on the subject row,
    only while the subject still points at this run: an earlier run never
    overwrites the summary of a later one."""
    kind = _KINDS.get(job.kind)
    if kind is None:
        return
    fields = {**kind.summary(job), **extra}
    if fields:
        kind.subject._default_manager.filter(pk=job.subject_id, job=job.pk).update(**fields)


def mirror(job_id: int, **extra: Any) -> Job | None:
    """Writes the kind's summary of the run, as it is now, on its subject."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None:
        _mirror(job, **extra)
    return job


# --- submit, enqueue, cancel, resume --------------------------------------------------------------------------

def submit(kind_name: str, *, subject_id: int, owner=None) -> Job:
    """A new run of `kind` about the subject: the Job row (the outbox), the
    subject pointed at it and its summary reset, the message sent when the
    transaction commits. Earlier runs stay as they are (the history)."""
    kind = kind_of(kind_name)
    with transaction.atomic():
        job = Job.objects.create(kind=kind.name, subject_id=subject_id, owner=owner)
        kind.subject._default_manager.filter(pk=subject_id).update(job=job)
        _mirror(job)
        transaction.on_commit(lambda: enqueue(job.pk))
    return job


def enqueue(job_id: int, *, countdown: float | None = None) -> bool:
    """Sends the job's message on its kind's queue; False (the row stays in
    the outbox) when the broker cannot be reached. Never raises for a broker
    fault, and gives up within the broker's short socket timeouts."""
    from .tasks import run_job

    name = Job.objects.filter(pk=job_id).values_list("kind", flat=True).first()
    kind = _KINDS.get(name or "")
    if kind is None:
        return False
    soft, hard = kind.time_limits()
    try:
        # No countdown is 0 to Celery, as None was (it only looks at a true one).
        # No queue named: the app's default queue (task_default_queue, read on every send).
        queue = kind.queue or run_job.app.conf.task_default_queue
        run_job.apply_async(args=(job_id,), queue=queue, countdown=countdown or 0,
                            soft_time_limit=soft, time_limit=hard, retry=False)
    except broker_errors() as exc:
        log.warning("broker unavailable, %s job %s stays in the outbox for the sweeper: %s",
                    kind.name, job_id, type(exc).__name__)
        return False
    # Whatever the status by now: a fast worker may have claimed the job already.
    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now())
    return True


def cancel(job_id: int, *, message: str = "") -> Job | None:
    """Ends a queued, running or waiting job at once, as `cancelled`. Its claim
    is cleared, which fences out a running worker: its next heartbeat finds
    the claim gone and the run stops (JobStopped from `progress`/`check`,
    `should_stop` turns true) without writing anything more. An ended job is
    left as it is. A kind whose run holds something outside its rows (Prepare's
    work folder) guards it itself against the next run."""
    now = timezone.now()
    with transaction.atomic():
        Job.objects.filter(pk=job_id, status__in=(JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING)).update(
            status=JobStatus.CANCELLED, claim="", lease_expires_at=None, finished_at=now,
            error_code="cancelled", error_message=message, updated_at=now)
        return mirror(job_id)


def resume(job_id: int) -> bool:
    """Queues a waiting job again (the answer it waited for is on its subject)."""
    with transaction.atomic():
        n = Job.objects.filter(pk=job_id, status=JobStatus.WAITING).update(
            status=JobStatus.QUEUED, enqueued_at=None, run_after=None, finished_at=None, updated_at=timezone.now())
        if n:
            mirror(job_id)
            transaction.on_commit(lambda: enqueue(job_id))
    return bool(n)


# --- the run ---------------------------------------------------------------------------------------------------

class RunningJob:
    """What a kind's `run` gets: the claimed row, progress, a stop flag.

    `progress()` may be called from any thread (the engine's header reads):
    it only buffers; the heartbeat thread is the one that writes, so those
    threads never open database connections of their own."""

    def __init__(self, job: Job, claim: str, kind: JobKind):
        self.job, self.claim, self.kind = job, claim, kind
        self.id, self.subject_id = job.pk, job.subject_id
        self._stop = threading.Event()
        self._stopped = threading.Event()  # cancelled or claim lost
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._beat, name=f"cfm-job-{job.pk}", daemon=True)

    def mine(self):
        return Job.objects.filter(pk=self.id, claim=self.claim, status=JobStatus.RUNNING)

    # -- for the kind
    def progress(self, step: str, done: int = 0, total: int = 0, *, bytes_done: int | None = None,
                 bytes_total: int | None = None, detail: dict | None = None) -> None:
        if self._stopped.is_set():
            raise JobStopped
        update: dict[str, Any] = {"progress_step": step[:40], "progress_done": done, "progress_total": total}
        if bytes_done is not None:
            update["bytes_done"] = bytes_done
        if bytes_total is not None:
            update["bytes_total"] = bytes_total
        if detail is not None:
            update["progress_detail"] = detail
        with self._lock:
            self._pending.update(update)

    def should_stop(self) -> bool:
        """True once the job was cancelled or its claim is gone: stop soon."""
        return self._stopped.is_set()

    def check(self) -> None:
        if self._stopped.is_set():
            raise JobStopped

    def update_subject(self, **fields: Any) -> None:
        """Writes the subject's own fields now (a resolved commit ...), only
        while this claim still owns the job."""
        with transaction.atomic():
            if not self.mine().select_for_update().exists():
                raise JobStopped
            self.kind.subject._default_manager.filter(pk=self.subject_id).update(**fields)

    # -- the heartbeat
    def _beat(self) -> None:
        interval = min(1.0, settings.CFM_JOB_LEASE_SECONDS / 3)
        try:
            while not self._stop.wait(interval):
                try:
                    self.flush()
                except DatabaseError as exc:
                    # The next beat tries again: a lease outlives a few missed beats (a busy SQLite, a
                    # database restart), and the thread must not die and let the lease expire.
                    log.warning("job %s: heartbeat failed: %s", self.id, exc)
                    connection.close()
        finally:
            connection.close()

    def flush(self) -> None:
        with self._lock:
            fields, self._pending = self._pending, {}
        now = timezone.now()
        with transaction.atomic():
            if not self.mine().update(lease_expires_at=now + lease(), updated_at=now, **fields):
                self._stopped.set()  # cancelled, reclaimed or deleted
                return
            _mirror(Job.objects.get(pk=self.id))

    def finish(self, status: str, *, subject: dict[str, Any] | None = None, **fields: Any) -> bool:
        """Ends the claim: the job's new state, the last progress not yet
        written, the subject's mirror and fields, in one transaction."""
        with self._lock:
            pending, self._pending = self._pending, {}
        now = timezone.now()
        ended = status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
        with transaction.atomic():
            if not self.mine().update(**{**pending, "status": status, "claim": "", "lease_expires_at": None,
                                         "finished_at": now if ended else None, "updated_at": now, **fields}):
                return False
            _mirror(Job.objects.get(pk=self.id), **(subject or {}))
        return True

    def __enter__(self) -> RunningJob:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


RunState = Literal["skipped", "done", "failed", "retry", "poll", "waiting", "cancelled", "lost"]


def run(*, job_id: int) -> RunState:
    """Claims and runs one job. Idempotent: a job that is not queued (ended,
    running elsewhere, cancelled) is skipped, and so is one that is not due."""
    claim = uuid.uuid4().hex
    now = timezone.now()
    # The slack: a countdown message may run a moment before run_after by the database's clock.
    due = Q(run_after__isnull=True) | Q(run_after__lte=now + timedelta(seconds=5))
    claimed = Job.objects.filter(due, pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, claim=claim, worker=worker_name()[:200], attempts=F("attempts") + 1,
        started_at=now, finished_at=None, lease_expires_at=now + lease(), run_after=None, error_code="",
        error_message="", progress_step="starting", progress_done=0, progress_total=0, bytes_done=0, progress_detail={},
        updated_at=now)
    if claimed != 1:
        return "skipped"
    job = Job.objects.get(pk=job_id)
    kind = _KINDS.get(job.kind)
    if kind is None:
        log.error("job %s: unknown kind %r", job_id, job.kind)
        Job.objects.filter(pk=job_id, claim=claim).update(
            status=JobStatus.FAILED, claim="", lease_expires_at=None, finished_at=timezone.now(),
            error_code="internal", error_message="This server does not know how to run this job.")
        return "failed"
    _mirror(job)
    with RunningJob(job, claim, kind) as running:
        return _run(kind, running)


def _run(kind: JobKind, running: RunningJob) -> RunState:
    label = f"{kind.name} job {running.id}"
    try:
        outcome = kind.run(running)
    except JobStopped:
        return _stopped(running, label)
    except JobError as exc:
        return _failed(running, exc.code, exc.message, label)
    except _soft_time_limit():
        soft, _hard = kind.time_limits()
        running.finish(JobStatus.FAILED, error_code="time_limit",
                       error_message=f"The {kind.label} took longer than {soft} seconds and was stopped.")
        return "failed"
    except Exception:  # noqa: BLE001 - a bug must end the job with a message, never a traceback to the user
        log.exception("%s: internal error", label)
        running.finish(JobStatus.FAILED, error_code="internal",
                       error_message=f"An internal error stopped the {kind.label}; the operators have the details.")
        return "failed"
    if outcome.state == "poll":
        # Not finished: queued again for later, and the attempt this claim counted is given back.
        if not running.finish(JobStatus.QUEUED, subject=outcome.subject, progress_step=outcome.step[:40],
                              attempts=F("attempts") - 1, enqueued_at=None,
                              run_after=timezone.now() + timedelta(seconds=outcome.seconds)):
            return _stopped(running, label)
        _send_later(running.id, outcome.seconds)
        return "poll"
    if outcome.state == "wait":
        if not running.finish(JobStatus.WAITING, subject=outcome.subject, progress_step=outcome.step[:40],
                              attempts=F("attempts") - 1):
            return _stopped(running, label)
        return "waiting"
    if not running.finish(JobStatus.DONE, subject=outcome.subject, progress_step=outcome.step[:40]):
        return _stopped(running, label)
    return "done"


def _send_later(job_id: int, delay: float) -> None:
    """The next run of a queued job, `delay` seconds from now. A delay the
    sweeper can keep (at least CFM_SWEEP_INTERVAL) is left to it: the row is
    sent when due, and no countdown message sits in a worker that may be
    killed meanwhile (Redis would hand it back only after its visibility
    timeout). A shorter one travels as a countdown message; if the broker is
    down, or the message is lost, the row waits for the sweeper all the same."""
    if delay < settings.CFM_SWEEP_INTERVAL:
        enqueue(job_id, countdown=delay)


def _stopped(running: RunningJob, label: str) -> RunState:
    """The claim is gone (cancelled, deleted or reclaimed): whoever ended or
    took the job wrote its state; this worker writes nothing more."""
    log.info("%s: claim lost (cancelled, deleted or reclaimed); stopping", label)
    return "lost"


def _failed(running: RunningJob, code: str, message: str, label: str) -> RunState:
    attempts = Job.objects.filter(pk=running.id).values_list("attempts", flat=True).first() or 1
    if code in TRANSIENT_CODES and attempts < settings.CFM_JOB_MAX_ATTEMPTS:
        delay = backoff_seconds(attempts)
        if not running.finish(JobStatus.QUEUED, enqueued_at=None, run_after=timezone.now() + timedelta(seconds=delay),
                              progress_step="retrying", error_code=code[:40], error_message=message):
            return _stopped(running, label)
        log.info("%s: %s, attempt %s in %.0f s", label, code, attempts + 1, delay)
        _send_later(running.id, delay)
        return "retry"
    if not running.finish(JobStatus.FAILED, error_code=code[:40], error_message=message):
        return _stopped(running, label)
    log.info("%s failed: %s: %s (attempt %s)", label, code, message, attempts)
    return "failed"
