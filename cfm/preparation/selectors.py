"""Reads on Prepare results: which copy of a model is its current state.

One question, asked by the model's page, the deployability check of a
deployment request, and the platform's upload ("which folder"): has this
registration a prepared copy? The answer is the latest successful Prepare
run that stored a folder: its report then describes the model as it would
be deployed, its folder is what goes to the platform. Without one, the
registration's own report and files are the model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cfm.registry.models import Registration

from .models import PrepareJob, PrepareStatus
from .storage import MANIFEST_NAME, Stored


@dataclass(frozen=True)
class Prepared:
    """The latest prepared copy of a registration."""

    job: PrepareJob
    report: dict
    #: "local" (a folder on this server) or "s3" (a bucket)
    backend: str
    #: the folder's absolute path, or s3://bucket/key/
    location: str
    #: {file: {"sha256", "size"}}, SHA256SUMS itself not included
    manifest: dict

    @property
    def number(self) -> int:
        return self.job.number

    @property
    def deployable(self) -> bool:
        return bool(self.report.get("deployable"))

    @property
    def total_bytes(self) -> int:
        return sum(int(f.get("size") or 0) for f in self.manifest.values())

    @property
    def folder(self) -> Path | None:
        """The local folder, or None when the copy is in a bucket."""
        return Path(self.location) if self.backend == "local" else None

    @property
    def bucket_key(self) -> tuple[str, str] | None:
        """(bucket, key prefix ending in /) when the copy is in a bucket."""
        if self.backend != "s3" or not self.location.startswith("s3://"):
            return None
        bucket, _, key = self.location[len("s3://"):].partition("/")
        return bucket, key

    @property
    def stored(self) -> Stored:
        bucket, key = self.bucket_key or ("", "")
        return Stored(self.backend, self.location, bucket=bucket, key=key)

    @property
    def files(self) -> list[str]:
        """Every file of the folder, the manifest last (it marks a complete folder)."""
        return [*sorted(self.manifest), MANIFEST_NAME]


def latest_prepared(registration: Registration) -> Prepared | None:
    """The registration's latest successful Prepare output, or None."""
    job = (PrepareJob.objects.filter(registration_id=registration.pk, status=PrepareStatus.DONE,
                                     new_report__isnull=False)
           .exclude(storage_location="").order_by("-finished_at", "-id").first())
    if job is None or not isinstance(job.new_report, dict):
        return None
    return _prepared(job)


def current_report(registration: Registration) -> dict | None:
    """The report that describes the model as it would be deployed: the
    prepared copy's when there is one, else the registration's own."""
    prepared = latest_prepared(registration)
    return prepared.report if prepared is not None else registration.report


def prepared_get(*, registration: Registration, job_id) -> Prepared | None:
    """One successful Prepare run's copy of this registration (the caller has scoped the registration to the
    user), or None."""
    try:
        job_id = int(job_id)
    except (TypeError, ValueError):
        return None
    job = (PrepareJob.objects.filter(pk=job_id, registration_id=registration.pk, status=PrepareStatus.DONE,
                                     new_report__isnull=False).exclude(storage_location="").first())
    if job is None or not isinstance(job.new_report, dict):
        return None
    return _prepared(job)


def _prepared(job: PrepareJob) -> Prepared:
    return Prepared(job=job, report=job.new_report or {}, backend=job.storage_backend or "local",
                    location=job.storage_location, manifest=dict(job.manifest or {}))
