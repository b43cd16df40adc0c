"""The Prepare kind of the one job runtime (cfm.jobs): claim, lease,
heartbeat, retry and sweep are the runtime's; this module runs the pipeline
and says what a run's end means for the PrepareJob row.

    queued ──claim──▶ running ──▶ done
       ▲                 │  ├──▶ review (the rope_scaling diff: the run waits) ──answer──▶ queued
       │                 │  └──▶ failed / cancelled
       └── expired lease (sweeper) ──┘

The pipeline polls `should_stop` (cancelled, or the claim lost) and kills
its sandboxed converter when it turns.

Work happens in `VAR_DIR/prepare/reg-<registration id>`: a re-run (a new
job, or the same one re-claimed by the sweeper) resumes downloads there and
skips completed steps. A successful run removes it; a failure keeps it for
the next attempt, except when the disk filled up.
"""
from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from cfm.jobs.models import Job, JobStatus
from cfm.jobs.runtime import JobError, JobKind, JobStopped, Outcome, RunningJob
from cfm.registry.limits import inspect_limits
from cfm.registry.models import Registration, SourceKind
from cfm.registry.secrets import TOKEN_UNREADABLE_MESSAGE, TokenUnreadable, registration_token

from .errors import Cancelled, PrepareError
from .models import PrepareJob, PrepareStatus
from .pipeline import NeedsReview, PrepareOptions, SourceSpec, prepare
from .storage import LocalStorage, S3Storage

KIND = "prepare"

#: the job's status in the PrepareJob's words
_STATUS = {JobStatus.QUEUED: PrepareStatus.QUEUED, JobStatus.RUNNING: PrepareStatus.RUNNING,
           JobStatus.WAITING: PrepareStatus.REVIEW, JobStatus.DONE: PrepareStatus.DONE,
           JobStatus.FAILED: PrepareStatus.FAILED, JobStatus.CANCELLED: PrepareStatus.CANCELLED}


class Prepare(JobKind):
    name = KIND
    label = "preparation"
    subject = PrepareJob
    # Hours of downloads and conversions never hold up an inspection.
    queue = "cfm-prepare"

    def time_limits(self) -> tuple[int, int]:
        # Download + conversion + tokenizer each have CFM_PREPARE_TIME_LIMIT; the
        # run as a whole gets a few of them. A killed run leaves its lease to expire
        # and the sweeper re-queues it (the work folder lets it resume).
        soft = settings.CFM_PREPARE_TIME_LIMIT * 4
        return soft, soft + 120

    def run(self, job: RunningJob) -> Outcome:
        prep = PrepareJob.objects.select_related("registration").get(pk=job.subject_id)
        registration = prep.registration
        progress = _Progress(job)
        try:
            options = PrepareOptions(steps=list(prep.steps), cast_to_16bit=prep.cast_to_16bit,
                                     rope_accept=prep.rope_accept, max_memory=settings.CFM_PREPARE_MAX_MEMORY,
                                     time_limit=settings.CFM_PREPARE_TIME_LIMIT, limits=inspect_limits())
            with _work_folder_lock(registration.pk, job):
                result = prepare(source_spec(registration), options, work_dir=work_dir_for(registration.pk),
                                 storage=storage_backend(), key=storage_key(prep), progress=progress,
                                 cancel=job.should_stop)
        except NeedsReview as review:
            return Outcome.wait(step="fix_rope_scaling", rope_diff=review.diff)
        except Cancelled:
            raise JobStopped from None
        except PrepareError as exc:
            raise JobError(exc.code, _public(exc.message)[:2000]) from None
        return Outcome.done(new_report=result.report,
                            summary={"steps": result.steps, "removed": result.removed, "added": result.added},
                            storage_backend=result.stored.backend, storage_location=result.stored.location[:500],
                            manifest=result.manifest)

    def summary(self, job: Job) -> dict[str, Any]:
        return {"status": _STATUS[JobStatus(job.status)], "stage": job.progress_step, "bytes_done": job.bytes_done,
                "bytes_total": job.bytes_total, "progress": job.progress_detail, "error_code": job.error_code,
                "error_message": job.error_message, "started_at": job.started_at, "finished_at": job.finished_at,
                "updated_at": timezone.now()}


class _Progress:
    """The pipeline's progress (stage, data) in the runtime's one shape, with
    a rate and an ETA per stage in the detail the page shows."""

    def __init__(self, job: RunningJob):
        self.job = job
        self._stage_started: dict[str, float] = {}

    def __call__(self, stage: str, data: dict) -> None:
        now = time.monotonic()
        start = self._stage_started.setdefault(stage, now)
        if stage == "downloading":
            done, total = int(data.get("done", 0)), int(data.get("total", 0))
            self.job.progress(stage, bytes_done=done, bytes_total=total, detail=data)
        elif "total" in data:
            done, total = int(data.get("done", 0)), int(data.get("total", 0))
            elapsed = now - start
            rate = done / elapsed if elapsed > 0.5 else 0.0
            eta = (total - done) / rate if rate > 0 else None
            self.job.progress(stage, bytes_done=done, bytes_total=total,
                              detail={"done": done, "total": total, "rate": round(rate, 1),
                                      "eta": round(eta, 1) if eta is not None else None, "files": {}})
        else:
            self.job.progress(stage, detail={})


def work_root() -> Path:
    return Path(settings.VAR_DIR) / "prepare"


def work_dir_for(registration_id: int) -> Path:
    return work_root() / f"reg-{registration_id}"


@contextmanager
def _work_folder_lock(registration_id: int, job: RunningJob) -> Iterator[None]:
    """One run at a time in a registration's work folder. A cancelled run (or
    one reclaimed from a worker that was only slow) may still be stopping
    when the next one starts: the next waits for its lock, which the kernel
    also releases when a worker is killed."""
    work_root().mkdir(parents=True, exist_ok=True)
    with open(work_root() / f"reg-{registration_id}.lock", "a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                job.check()
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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


def source_spec(row: Registration) -> SourceSpec:
    """Where a registration's files come from, for Prepare (and for the platform, which fetches a model
    folder the same way): the Hub with the inspection's timeout and retries, or the stored upload."""
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
