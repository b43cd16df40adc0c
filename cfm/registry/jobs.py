"""The inspection job of a registration, and the sweeper.

The Registration row is the truth about the job (style.md):

    queued ──claim──▶ fetching ──▶ inspecting ──▶ done
       ▲                  │             │
       └── transient fault (backoff), expired lease (sweeper) ──┘ ──▶ failed

- `enqueue` sends the thin task (the registration's id, nothing else) and
  stamps `enqueued_at`; if the broker is down the row stays in the outbox.
- `run` claims the row with `UPDATE … WHERE id=? AND status='queued'`: a
  second delivery of the same message finds nothing to do. The claim is a
  random id; every later write is `… WHERE claim=?`, so a job that was
  cancelled, or reclaimed after its lease expired, fences out the old worker.
- A heartbeat thread renews the lease (`lease_expires_at`) and writes the
  progress while the engine runs; a worker killed with -9 stops renewing and
  the sweeper reclaims the job once the lease has expired.
- `sweep` (celery beat, every CFM_SWEEP_INTERVAL s) queues the outbox, re-queues
  jobs whose message was lost, and reclaims expired leases (a bounded number
  of attempts, then `failed` with the reason).

Progress step keys (`progress_step`, rendered into words by the pages):
`starting`, `fetching`, `resolving_revision` (the Hub), then the engine's
`listing_files`, `reading_config`, `reading_headers` (done/total = shards),
`checking`; at the end `done` or `reused` (another registration's report of
the same commit); between attempts `retrying` (backoff) or `requeued` (the
sweeper reclaimed a lost worker's job). `bytes_done` counts the bytes really
read, `bytes_total` the size of the model's files.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from cfm.catalog import RULES_VERSION
from cfm.inspection import InspectOptions, SourceError, inspect_source
from cfm.inspection.archives import open_archive
from cfm.inspection.sources import SnapshotSource, Source

from .limits import inspect_limits
from .models import ACTIVE_STATUSES, Registration, SourceKind, Status
from .secrets import TOKEN_UNREADABLE_MESSAGE, TokenUnreadable, registration_token

log = logging.getLogger(__name__)

#: SourceError codes worth another attempt: the Hub was down or slow
TRANSIENT = frozenset({"hub_unavailable", "timeout"})
RUNNING = (Status.FETCHING, Status.INSPECTING)


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError

    errors: list[type[BaseException]] = [OperationalError, OSError, TimeoutError]
    try:
        import redis.exceptions

        errors.append(redis.exceptions.RedisError)
    except ImportError:  # the filesystem broker needs no redis
        pass
    return tuple(errors)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- queueing -----------------------------------------------------------------------------------------------

def enqueue(*, registration_id: int, countdown: float | None = None) -> bool:
    """Sends the task; False (and the row stays in the outbox) when the
    broker cannot be reached. Never raises for a broker fault, and gives up
    within the broker's short socket timeouts (settings.py)."""
    from .tasks import run_registration

    try:
        # No countdown is 0 to Celery, as None was (it only looks at a true one).
        run_registration.apply_async(args=(registration_id,), countdown=countdown or 0, retry=False)
    except _broker_errors() as exc:
        log.warning("broker unavailable, registration %s stays in the outbox for the sweeper: %s",
                    registration_id, type(exc).__name__)
        return False
    # Whatever the status by now: a fast worker may have claimed the job already.
    Registration.objects.filter(pk=registration_id).update(enqueued_at=timezone.now())
    return True


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: after the first attempt up to
    CFM_JOB_RETRY_BACKOFF seconds, then twice as long each time, at most 5 min."""
    ceiling = min(300.0, settings.CFM_JOB_RETRY_BACKOFF * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 4, ceiling)


# --- the run -------------------------------------------------------------------------------------------------

class JobLost(Exception):
    """Our claim is gone: cancelled, deleted or reclaimed. Stop quietly."""


@dataclass
class Outcome:
    state: str  # skipped, done, failed, retry, lost
    retry_in: float | None = None


class _Job:
    def __init__(self, row: Registration, claim: str):
        self.row, self.claim = row, claim
        self.pk = row.pk
        self.lease = timedelta(seconds=settings.CFM_JOB_LEASE_SECONDS)
        self.lost = threading.Event()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._progress: dict = {}
        self._thread: threading.Thread | None = None

    def mine(self):
        return Registration.objects.filter(pk=self.pk, claim=self.claim, status__in=RUNNING)

    # -- heartbeat: the only thread that writes progress, so the engine's header
    #    threads never open database connections of their own
    def _beat(self) -> None:
        interval = min(1.0, settings.CFM_JOB_LEASE_SECONDS / 3)
        try:
            while not self.stop.wait(interval):
                self.flush()
        finally:
            connection.close()

    def flush(self) -> None:
        with self._lock:
            fields = dict(self._progress)
            self._progress.clear()
        now = timezone.now()
        if not self.mine().update(lease_expires_at=now + self.lease, updated_at=now, **fields):
            self.lost.set()

    def __enter__(self):
        self._thread = threading.Thread(target=self._beat, name=f"cfm-lease-{self.pk}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    # -- called by the engine (any thread)
    def progress(self, step: str, done: int = 0, total: int = 0, nbytes: int | None = None) -> None:
        if self.lost.is_set():
            raise JobLost
        update = {"progress_step": step[:40], "progress_done": done, "progress_total": total}
        if nbytes is not None:
            update["bytes_done"] = nbytes
        with self._lock:
            self._progress.update(update)

    def status(self, status: str) -> None:
        now = timezone.now()
        if not self.mine().update(status=status, lease_expires_at=now + self.lease, updated_at=now):
            raise JobLost

    def finish(self, **fields) -> bool:
        with self._lock:
            pending = dict(self._progress)  # the last progress the heartbeat has not written yet
            self._progress.clear()
        now = timezone.now()
        return bool(self.mine().update(claim="", lease_expires_at=None, finished_at=now, updated_at=now,
                                       **{**pending, **fields}))


def run(*, registration_id: int) -> Outcome:
    """Claims and runs one registration's inspection. Idempotent: a job that
    is not queued (done, failed, running elsewhere) is skipped."""
    claim = uuid.uuid4().hex
    now = timezone.now()
    claimed = Registration.objects.filter(pk=registration_id, status=Status.QUEUED).update(
        status=Status.FETCHING, claim=claim, worker=worker_name()[:200], attempts=F("attempts") + 1,
        started_at=now, finished_at=None, lease_expires_at=now + timedelta(seconds=settings.CFM_JOB_LEASE_SECONDS),
        not_before=None, progress_step="starting", progress_done=0, progress_total=0, bytes_done=0,
        updated_at=now)
    if claimed != 1:
        return Outcome("skipped")
    row = Registration.objects.get(pk=registration_id)
    with _Job(row, claim) as job:
        try:
            return _run(job, row)
        except JobLost:
            log.info("registration %s: claim lost (cancelled, deleted or reclaimed); stopping", registration_id)
            return Outcome("lost")
        except SourceError as exc:
            return _source_failed(job, row, exc)
        except _soft_time_limit() as exc:
            _ = exc
            job.finish(status=Status.FAILED, error_code="timeout",
                       error_message=f"The inspection took longer than {settings.CELERY_TASK_SOFT_TIME_LIMIT} "
                                     "seconds and was stopped.")
            return Outcome("failed")
        except Exception:  # noqa: BLE001 - a bug must end the job with a message, never a traceback to the user
            log.exception("registration %s: internal error while inspecting", registration_id)
            job.finish(status=Status.FAILED, error_code="source_unreadable",
                       error_message="An internal error stopped the inspection; the operators have the details.")
            return Outcome("failed")


def _soft_time_limit() -> tuple[type[BaseException], ...]:
    from celery.exceptions import SoftTimeLimitExceeded

    return (SoftTimeLimitExceeded,)


def _public(row: Registration, message: str) -> str:
    """The row's message is read by users (the page, the API): a Hub
    message names "the Hub", never the address this server reaches it at."""
    if row.source_kind != SourceKind.HUB:
        return message
    from cfm.inspection.hub import public_message

    return public_message(message, (settings.HF_ENDPOINT,))


def _source_failed(job: _Job, row: Registration, exc: SourceError) -> Outcome:
    attempts = Registration.objects.filter(pk=row.pk).values_list("attempts", flat=True).first() or 1
    message = _public(row, exc.message)
    if exc.code in TRANSIENT and attempts < settings.CFM_JOB_MAX_ATTEMPTS:
        delay = backoff_seconds(attempts)
        if job.finish(status=Status.QUEUED, enqueued_at=None, not_before=timezone.now() + timedelta(seconds=delay),
                      progress_step="retrying", error_code=exc.code, error_message=message):
            log.info("registration %s: %s, retry %s in %.0f s", row.pk, exc.code, attempts + 1, delay)
            return Outcome("retry", retry_in=delay)
        return Outcome("lost")
    job.finish(status=Status.FAILED, error_code=exc.code, error_message=message)
    log.info("registration %s failed: %s: %s (attempt %s)", row.pk, exc.code, exc.message, attempts)
    return Outcome("failed")


def _run(job: _Job, row: Registration) -> Outcome:
    limits = inspect_limits()
    source = _open(job, row, limits)
    try:
        if row.source_kind == SourceKind.HUB:
            commit = getattr(source, "sha", "") or source.description.rpartition("@")[2]
            if commit:
                Registration.objects.filter(pk=row.pk, claim=job.claim).update(resolved_commit=commit[:64])
                earlier = (Registration.objects
                           .filter(account_id=row.account_id, source_kind=SourceKind.HUB, source=row.source,
                                   resolved_commit=commit, status=Status.DONE, report__rules_version=RULES_VERSION)
                           .exclude(pk=row.pk).order_by("-finished_at").first())
                if earlier is not None and earlier.report:
                    # The same commit, already inspected for this account under the same rules.
                    job.finish(status=Status.DONE, report=earlier.report, reused_from=earlier, error_code="",
                               error_message="", progress_step="reused")
                    return Outcome("done")
        files = source.list_files()
        # The model's size on paper; bytes_done counts what is really read
        # (the headers): "2 MB read of 16 GB" is the point of the inspection.
        Registration.objects.filter(pk=row.pk, claim=job.claim).update(bytes_total=sum(files.values()))
        job.status(Status.INSPECTING)
        report = inspect_source(source, InspectOptions(limits=limits, progress=job.progress))
    finally:
        source.close()
    data = report.to_dict()
    if not job.finish(status=Status.DONE, report=data, error_code="", error_message="", progress_step="done",
                      bytes_done=source.bytes_read):
        raise JobLost
    return Outcome("done")


def _open(job: _Job, row: Registration, limits) -> Source:
    job.progress("fetching")
    if row.source_kind == SourceKind.HUB:
        try:
            token = registration_token(row)
        except TokenUnreadable:
            raise SourceError("access_denied", TOKEN_UNREADABLE_MESSAGE) from None
        from cfm.inspection.hub import open_hub

        return open_hub(row.source, limits=limits, revision=row.revision or None, token=token,
                        progress=lambda step, done, total: job.progress(step, done, total),
                        timeout=settings.CFM_HUB_TIMEOUT, attempts=settings.CFM_HUB_MAX_RETRIES + 1)
    path = Path(row.upload_path)
    if not row.upload_path or not path.exists():
        raise SourceError("source_unreadable", "The uploaded files are no longer stored; upload them again.")
    if row.source_kind == SourceKind.ARCHIVE:
        source = open_archive(path, limits)
        source.description = row.source  # the user's file name, not the server's path
        return source
    return _open_snapshot(row, path)


def _open_snapshot(row: Registration, manifest_path: Path) -> SnapshotSource:
    import json

    manifest = json.loads(manifest_path.read_text())
    root = manifest_path.parent / "files"
    contents = {p: (root / p).read_bytes() for p in manifest.get("stored", {})}
    return SnapshotSource(manifest.get("name") or row.source, {p: int(s) for p, s in manifest["sizes"].items()},
                          contents)


# --- the sweeper --------------------------------------------------------------------------------------------------

@dataclass
class SweepResult:
    queued: int = 0
    reclaimed: int = 0
    failed: int = 0


def sweep() -> SweepResult:
    """Queues what the broker never got, re-queues messages that were lost,
    and reclaims jobs whose worker died (lease expired)."""
    now = timezone.now()
    result = SweepResult()
    lease = timedelta(seconds=settings.CFM_JOB_LEASE_SECONDS)

    # Expired leases: the worker died (kill -9, OOM, hard time limit, lost host).
    for pk, attempts, claim in (Registration.objects.filter(status__in=RUNNING, lease_expires_at__lt=now)
                                .values_list("pk", "attempts", "claim")[:500]):
        if attempts >= settings.CFM_JOB_MAX_ATTEMPTS:
            n = Registration.objects.filter(pk=pk, claim=claim, status__in=RUNNING).update(
                status=Status.FAILED, claim="", lease_expires_at=None, finished_at=now, updated_at=now,
                error_code="timeout",
                error_message=f"The inspection was interrupted {attempts} times (its worker stopped or ran out "
                              "of time); it was not tried again.")
            result.failed += n
        else:
            n = Registration.objects.filter(pk=pk, claim=claim, status__in=RUNNING).update(
                status=Status.QUEUED, claim="", lease_expires_at=None, enqueued_at=None, updated_at=now,
                progress_step="requeued")
            result.reclaimed += n
            if n:
                log.warning("registration %s: lease expired (worker lost); re-queued", pk)

    # The outbox, and queued jobs whose message has waited far longer than a
    # lease (a broker restarted without persistence): a second message is
    # harmless, the claim lets only one run.
    stale = now - max(lease * 5, timedelta(minutes=10))
    due = (Registration.objects.filter(status=Status.QUEUED)
           .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale))
           .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
           .order_by("created_at").values_list("pk", flat=True)[:500])
    for pk in due:
        if not enqueue(registration_id=pk):
            break  # the broker is still down: try again at the next sweep
        result.queued += 1
    _clean_incoming(now)
    return result


def _clean_incoming(now) -> None:
    """Uploads that a crashed request left half-written (a finished one is
    moved under its registration's id)."""
    import shutil

    from .services import uploads_root

    incoming = uploads_root() / ".incoming"
    if not incoming.is_dir():
        return
    cutoff = now.timestamp() - 6 * 3600
    for entry in incoming.iterdir():
        try:
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:  # removed meanwhile by the request that owns it
            continue


def active_count() -> int:
    return Registration.objects.filter(status__in=ACTIVE_STATUSES).count()
