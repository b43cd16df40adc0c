"""The worker side of a Prepare job: claim, run the pipeline, write the row.

    queued ──claim──▶ running ──▶ done
       ▲                 │  ├──▶ review (the rope_scaling diff) ──answer──▶ queued
       │                 │  └──▶ failed / cancelled
       └── expired lease (sweeper) ──┘

The claim is `UPDATE … WHERE id=? AND status='queued'`; every later write is
`… WHERE claim=?`. A heartbeat thread renews the lease once a second, writes
the latest progress and reads `cancel_requested`; the pipeline polls the
resulting flag (and kills its sandboxed converter when it turns).

Work happens in `VAR_DIR/prepare/reg-<registration id>`: a re-run (a new
job, or the same one re-claimed by the sweeper) resumes downloads there and
skips completed steps. A successful run removes it; a failure keeps it for
the next attempt, except when the disk filled up.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F, Q
from django.utils import timezone

from cfm.registry.limits import inspect_limits
from cfm.registry.models import Registration, SourceKind
from cfm.registry.secrets import TOKEN_UNREADABLE_MESSAGE, TokenUnreadable, registration_token

from .errors import Cancelled, PrepareError
from .models import PrepareJob, PrepareStatus
from .pipeline import NeedsReview, PrepareOptions, SourceSpec, prepare
from .storage import LocalStorage, S3Storage

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


def work_root() -> Path:
    return Path(settings.VAR_DIR) / "prepare"


def work_dir_for(registration_id: int) -> Path:
    return work_root() / f"reg-{registration_id}"


def storage_backend() -> LocalStorage | S3Storage:
    if settings.CFM_S3_BUCKET:
        return S3Storage(endpoint=settings.CFM_S3_ENDPOINT, bucket=settings.CFM_S3_BUCKET,
                         access_key=settings.CFM_S3_ACCESS_KEY, secret_key=settings.CFM_S3_SECRET_KEY,
                         region=settings.CFM_S3_REGION)
    return LocalStorage(Path(settings.MEDIA_ROOT))


def storage_key(job: PrepareJob) -> str:
    """`prepared/<account>/<registration>/<run>`: the folder path the
    platform's model asset points at. Each run has its own, so a later run
    (say, cast to 16 bits) never overwrites what an earlier one stored and
    still describes."""
    return f"prepared/{job.account_id}/{job.registration_id}/{job.number}"


def enqueue(*, job_id: int) -> bool:
    from .tasks import prepare_run

    try:
        prepare_run.apply_async(args=(job_id,), retry=False)
    except Exception as exc:  # noqa: BLE001 - broker faults of any transport; the sweeper re-sends
        log.warning("broker unavailable, prepare job %s waits for the sweeper: %s", job_id, type(exc).__name__)
        return False
    PrepareJob.objects.filter(pk=job_id, status=PrepareStatus.QUEUED).update(enqueued_at=timezone.now())
    return True


class _Heartbeat:
    def __init__(self, job_id: int, claim: str):
        self.job_id, self.claim = job_id, claim
        self.lease = timedelta(seconds=settings.CFM_JOB_LEASE_SECONDS)
        self.stop_event = threading.Event()
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._pending: dict = {}
        self._stage_started: dict[str, float] = {}
        self._thread = threading.Thread(target=self._loop, name=f"cfm-prepare-{job_id}", daemon=True)

    def mine(self):
        return PrepareJob.objects.filter(pk=self.job_id, claim=self.claim, status=PrepareStatus.RUNNING)

    def _loop(self) -> None:
        try:
            while not self.stop_event.wait(min(1.0, settings.CFM_JOB_LEASE_SECONDS / 3)):
                self.flush()
        finally:
            connection.close()

    def flush(self) -> None:
        with self._lock:
            fields, self._pending = self._pending, {}
        now = timezone.now()
        if not self.mine().update(lease_expires_at=now + self.lease, updated_at=now, **fields):
            self.cancelled.set()  # our claim is gone (cancelled, reclaimed)
            return
        if self.mine().filter(cancel_requested=True).exists():
            self.cancelled.set()

    def progress(self, stage: str, data: dict) -> None:
        """Called by the pipeline from its thread: only remembered here."""
        now = time.monotonic()
        start = self._stage_started.setdefault(stage, now)
        update: dict = {"stage": stage[:40]}
        if stage == "downloading":
            update.update(bytes_done=data.get("done", 0), bytes_total=data.get("total", 0), progress=data)
        elif "total" in data:
            done, total = int(data.get("done", 0)), int(data.get("total", 0))
            elapsed = now - start
            rate = done / elapsed if elapsed > 0.5 else 0.0
            eta = (total - done) / rate if rate > 0 else None
            update.update(bytes_done=done, bytes_total=total,
                          progress={"done": done, "total": total, "rate": round(rate, 1),
                                    "eta": round(eta, 1) if eta is not None else None, "files": {}})
        else:
            update.update(progress={})
        with self._lock:
            self._pending.update(update)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self._thread.join(timeout=10)


def _source(row: Registration) -> SourceSpec:
    if row.source_kind == SourceKind.HUB:
        try:
            token = registration_token(row)
        except TokenUnreadable:
            raise PrepareError("access_denied", TOKEN_UNREADABLE_MESSAGE) from None
        return SourceSpec(kind="hub", repo_id=row.source, revision=row.resolved_commit or row.revision or None,
                          token=token, endpoint=settings.HF_ENDPOINT, hub_timeout=settings.CFM_HUB_TIMEOUT,
                          hub_attempts=settings.CFM_HUB_MAX_RETRIES + 1)
    path = Path(row.upload_path) if row.upload_path else None
    if path is None or not path.exists():
        raise PrepareError("source_unavailable", "the uploaded files are no longer stored; upload the model again")
    if row.source_kind == SourceKind.ARCHIVE:
        return SourceSpec(kind="archive", path=str(path))
    return SourceSpec(kind="folder", path=str(path))


def _public(message: str) -> str:
    """Users read the row's message: a Hub failure (huggingface_hub's text
    holds URLs) names "the Hub", never the address this server reaches it at."""
    from cfm.inspection.hub import public_message

    return public_message(message, (settings.HF_ENDPOINT,))


def run(*, job_id: int) -> str:
    """Claims and runs one Prepare job; idempotent (a job that is not queued
    is skipped). Returns the state it ended in."""
    claim = uuid.uuid4().hex
    now = timezone.now()
    claimed = PrepareJob.objects.filter(pk=job_id, status=PrepareStatus.QUEUED, cancel_requested=False).update(
        status=PrepareStatus.RUNNING, claim=claim, attempts=F("attempts") + 1, started_at=now, finished_at=None,
        lease_expires_at=now + timedelta(seconds=settings.CFM_JOB_LEASE_SECONDS), error_code="", error_message="",
        stage="starting", progress={}, updated_at=now)
    if claimed != 1:
        return "skipped"
    job = PrepareJob.objects.select_related("registration").get(pk=job_id)
    registration = job.registration
    beat = _Heartbeat(job_id, claim)

    def finish(**fields) -> None:
        beat.flush()
        ended = timezone.now()
        beat.mine().update(**{"claim": "", "lease_expires_at": None, "finished_at": ended, "updated_at": ended,
                              **fields})

    with beat:
        try:
            options = PrepareOptions(steps=list(job.steps), cast_to_16bit=job.cast_to_16bit,
                                     rope_accept=job.rope_accept, max_memory=settings.CFM_PREPARE_MAX_MEMORY,
                                     time_limit=settings.CFM_PREPARE_TIME_LIMIT, limits=inspect_limits())
            result = prepare(_source(registration), options, work_dir=work_dir_for(registration.pk),
                             storage=storage_backend(), key=storage_key(job), progress=beat.progress,
                             cancel=beat.cancelled.is_set)
        except NeedsReview as review:
            finish(status=PrepareStatus.REVIEW, rope_diff=review.diff, stage="fix_rope_scaling", finished_at=None)
            return "review"
        except Cancelled:
            finish(status=PrepareStatus.CANCELLED, error_code="cancelled")
            return "cancelled"
        except PrepareError as exc:
            log.info("prepare job %s failed: %s: %s", job_id, exc.code, exc.message)
            finish(status=PrepareStatus.FAILED, error_code=exc.code[:40], error_message=_public(exc.message)[:2000])
            return "failed"
        except Exception as exc:  # noqa: BLE001 - a bug ends the job with a message, never a traceback to the user
            if type(exc).__name__ == "SoftTimeLimitExceeded":  # Celery's, raised into this thread
                finish(status=PrepareStatus.FAILED, error_code="time_limit",
                       error_message="The preparation took longer than its task time limit; Prepare again to resume.")
                return "failed"
            log.exception("prepare job %s: internal error", job_id)
            finish(status=PrepareStatus.FAILED, error_code="internal",
                   error_message="An internal error stopped the preparation; the operators have the details.")
            return "failed"
        finish(status=PrepareStatus.DONE, new_report=result.report, stage="done",
               summary={"steps": result.steps, "removed": result.removed, "added": result.added},
               storage_backend=result.stored.backend, storage_location=result.stored.location[:500],
               manifest=result.manifest)
        return "done"


def sweep() -> dict:
    """Re-queues jobs whose worker died (lease expired) up to MAX_ATTEMPTS,
    and sends queued jobs the broker never got."""
    close_old_connections()
    now = timezone.now()
    reclaimed = failed = queued = 0
    for pk, attempts, claim in (PrepareJob.objects.filter(status=PrepareStatus.RUNNING, lease_expires_at__lt=now)
                                .values_list("pk", "attempts", "claim")[:200]):
        mine = PrepareJob.objects.filter(pk=pk, claim=claim, status=PrepareStatus.RUNNING)
        if attempts >= MAX_ATTEMPTS:
            failed += mine.update(status=PrepareStatus.FAILED, claim="", lease_expires_at=None, finished_at=now,
                                  error_code="worker_lost",
                                  error_message=f"The preparation was interrupted {attempts} times.")
        else:
            reclaimed += mine.update(status=PrepareStatus.QUEUED, claim="", lease_expires_at=None, enqueued_at=None)
    stale = now - timedelta(minutes=10)
    for pk in (PrepareJob.objects.filter(status=PrepareStatus.QUEUED)
               .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)).values_list("pk", flat=True)[:200]):
        if not enqueue(job_id=pk):
            break
        queued += 1
    return {"reclaimed": reclaimed, "failed": failed, "queued": queued}
