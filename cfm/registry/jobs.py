"""The inspection job of a registration: a kind of the one job runtime
(cfm.jobs), which claims, leases, retries and sweeps it.

The registration row mirrors its latest run (status in the API contract's
words, progress, error); only the runtime writes that mirror, through
`summary` below. Every run is a Job row: a re-run adds one and keeps the
earlier runs.

Progress step keys (`progress_step`, rendered into words by the pages):
`starting`, `fetching`, `resolving_revision` (the Hub), then the engine's
`listing_files`, `reading_config`, `reading_headers` (done/total = shards),
`checking`; at the end `done` or `reused` (another registration's report of
the same commit); between attempts `retrying` (backoff) or `requeued` (the
sweeper reclaimed a lost worker's job). `bytes_done` counts the bytes really
read, `bytes_total` the size of the model's files.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from cfm.catalog import RULES_VERSION
from cfm.inspection import InspectOptions, SourceError, inspect_source
from cfm.inspection.archives import open_archive
from cfm.inspection.sources import SnapshotSource, Source
from cfm.jobs.models import Job, JobStatus
from cfm.jobs.runtime import JobError, JobKind, Outcome, RunningJob

from .limits import inspect_limits
from .models import Registration, SourceKind, Status
from .secrets import TOKEN_UNREADABLE_MESSAGE, TokenUnreadable, registration_token

KIND = "inspection"

#: steps before the engine reads the model: the registration is `fetching`; after them, `inspecting`
FETCH_STEPS = frozenset({"", "starting", "fetching", "resolving_revision"})
#: the runtime's own error codes in the API contract's words (api-contract.md)
ERROR_CODES = {"time_limit": "timeout", "worker_lost": "timeout", "internal": "source_unreadable"}
_STATUS: dict[str, str] = {JobStatus.QUEUED: Status.QUEUED, JobStatus.DONE: Status.DONE}


class Inspection(JobKind):
    name = KIND
    label = "inspection"
    subject = Registration

    def run(self, job: RunningJob) -> Outcome:
        row = Registration.objects.get(pk=job.subject_id)
        try:
            return _inspect(job, row)
        except SourceError as exc:
            raise JobError(exc.code, _public(row, exc.message)) from None

    def summary(self, job: Job) -> dict[str, Any]:
        status = _STATUS.get(job.status, Status.FAILED)  # failed and cancelled alike (error_code tells)
        if job.status == JobStatus.RUNNING:
            status = Status.FETCHING if job.progress_step in FETCH_STEPS else Status.INSPECTING
        error_code = ERROR_CODES.get(job.error_code, job.error_code)
        return {"status": status, "progress_step": job.progress_step, "progress_done": job.progress_done,
                "progress_total": job.progress_total, "bytes_done": job.bytes_done, "bytes_total": job.bytes_total,
                "error_code": error_code, "error_message": job.error_message, "finished_at": job.finished_at,
                "updated_at": timezone.now()}

    def housekeeping(self, now: datetime) -> None:
        _clean_incoming(now)


def _public(row: Registration, message: str) -> str:
    """The row's message is read by users (the page, the API): a Hub
    message names "the Hub", never the address this server reaches it at."""
    if row.source_kind != SourceKind.HUB:
        return message
    from cfm.inspection.hub import public_message

    return public_message(message, (settings.HF_ENDPOINT,))


def _inspect(job: RunningJob, row: Registration) -> Outcome:
    limits = inspect_limits()
    source = _open(job, row, limits)
    try:
        if row.source_kind == SourceKind.HUB:
            commit = getattr(source, "sha", "") or source.description.rpartition("@")[2]
            if commit:
                job.update_subject(resolved_commit=commit[:64])
                earlier = (Registration.objects
                           .filter(account_id=row.account_id, source_kind=SourceKind.HUB, source=row.source,
                                   resolved_commit=commit, status=Status.DONE, report__rules_version=RULES_VERSION)
                           .exclude(pk=row.pk).order_by("-finished_at").first())
                if earlier is not None and earlier.report:
                    # The same commit, already inspected for this account under the same rules.
                    return Outcome.done(step="reused", report=earlier.report, reused_from=earlier)
        files = source.list_files()
        # The model's size on paper; bytes_done counts what is really read
        # (the headers): "2 MB read of 16 GB" is the point of the inspection.
        job.progress("listing_files", bytes_total=sum(files.values()))
        report = inspect_source(source, InspectOptions(
            limits=limits, progress=lambda step, done, total, nbytes: job.progress(step, done, total,
                                                                                  bytes_done=nbytes)))
    finally:
        source.close()
    job.progress("done", bytes_done=source.bytes_read)
    return Outcome.done(report=report.to_dict())


def _open(job: RunningJob, row: Registration, limits) -> Source:
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
    return open_snapshot(row, path)


def open_snapshot(row: Registration, manifest_path: Path) -> SnapshotSource:
    manifest = json.loads(manifest_path.read_text())
    root = manifest_path.parent / "files"
    contents = {p: (root / p).read_bytes() for p in manifest.get("stored", {})}
    return SnapshotSource(manifest.get("name") or row.source, {p: int(s) for p, s in manifest["sizes"].items()},
                          contents)


def _clean_incoming(now: datetime) -> None:
    """Uploads that a crashed request left half-written (a finished one is
    moved under its registration's id)."""
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
