"""Writes on Prepare jobs: start, cancel, answer the rope_scaling review.
Views, the API and commands call these; the run itself is a job of the one
runtime (cfm.jobs; the Prepare kind is jobs.py)."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cfm.accounts.models import Membership
from cfm.accounts.permissions import require_may_change
from cfm.errors import http_status
from cfm.jobs import runtime
from cfm.registry.models import Registration, SourceKind
from cfm.registry.models import Status as RegStatus
from cfm.registry.texts import filesize

from .download import DISK_MARGIN, folder_partial_files
from .errors import PrepareError
from .extras import INSTALL_HINT, missing_packages
from .models import ACTIVE, PrepareJob, PrepareStatus

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise


class PrepareServiceError(Exception):
    """A Prepare refused: `code` (its HTTP status in cfm/errors.py) and the message."""

    def __init__(self, code: str, message: str | StrPromise):
        super().__init__(message)
        self.code, self.message = code, message

    @property
    def status(self) -> int:
        return http_status(self.code, app="preparation")


def s3_configured() -> bool:
    return bool(settings.CFM_S3_BUCKET)


def prepare_missing_packages(*, registration: Registration) -> list[str]:
    steps = (registration.report or {}).get("preparation") or []
    return missing_packages(steps, s3=s3_configured())


def prepare_partial_file(*, registration: Registration) -> str | None:
    """A file Prepare needs that the registration's upload holds only in
    part (a folder upload sends the headers of large files, not their
    weights), or None when the source can be prepared as far as is known
    here. Such a registration can never be prepared: the weights are not on
    the server."""
    if registration.source_kind != SourceKind.FOLDER or not registration.upload_path:
        return None
    try:
        manifest = json.loads(Path(registration.upload_path).read_text())
    except (OSError, ValueError):
        return None  # gone or unreadable: the job says so, as for an archive that is gone
    partial = folder_partial_files(manifest) if isinstance(manifest, dict) else []
    return partial[0] if partial else None


def detail_partial_file(registration: Registration) -> str | None:
    """`prepare_partial_file` for the registration page (added to it in
    apps.py): the Prepare page's own test, so a folder upload that holds
    only the headers of a file Prepare needs is never offered Prepare there
    either. Only a current report offers Prepare, and the polled fragment
    of a running job reads no file."""
    report = registration.report or {}
    if registration.status != RegStatus.DONE or not report.get("preparation"):
        return None
    return prepare_partial_file(registration=registration)


@dataclass(frozen=True)
class DiskPlan:
    """What Prepare will download and the disk it needs, from the report (the
    source's listing, read at inspection: no request here)."""

    download: int
    #: converted weights written beside the download (the same bytes again: an upper bound when casting)
    converted: int
    margin: int
    #: already in the registration's work folder from an earlier run (a resumed download)
    present: int
    #: free bytes where the prepared folder is stored (the media folder)
    free: int

    @property
    def needed(self) -> int:
        return max(self.download - self.present, 0) + self.converted + self.margin

    @property
    def enough(self) -> bool:
        return self.free >= self.needed

    @property
    def shortfall(self) -> int:
        return max(self.needed - self.free, 0)


def _free_bytes(path: Path) -> int:
    # The media folder may not exist yet: its nearest existing parent is on the same disk.
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return 0


def _present_bytes(folder: Path) -> int:
    try:
        return sum(e.stat().st_size for e in os.scandir(folder) if e.is_file(follow_symlinks=False))
    except OSError:
        return 0


def prepare_disk_plan(*, registration: Registration) -> DiskPlan | None:
    """The download and disk figures of the Prepare page, or None for a report
    written before the listing's sizes were kept (the job still checks the
    disk before it writes)."""
    report = registration.report or {}
    files = report.get("files")
    download = files.get("needed_bytes") if isinstance(files, dict) else None
    if not isinstance(download, int) or isinstance(download, bool) or download < 0:
        return None
    steps = report.get("preparation") or []
    listed = report.get("files_bytes")
    rewrites = "convert_weights_to_safetensors" in steps or "fix_safetensors_metadata" in steps
    converted = listed if rewrites and isinstance(listed, int) and listed > 0 else 0
    from .jobs import work_dir_for

    return DiskPlan(download=download, converted=converted, margin=DISK_MARGIN,
                    present=_present_bytes(work_dir_for(registration.pk) / "download"),
                    free=_free_bytes(Path(settings.MEDIA_ROOT)))


def _member(user, account_id: int) -> bool:
    return Membership.objects.filter(account_id=account_id, user=user).exists()


def prepare_start(*, registration: Registration, user, cast_to_16bit: bool = False) -> PrepareJob:
    """Queues a Prepare job for a registration whose report lists steps. A
    job already queued or running (or waiting for review) is returned as is:
    two jobs never share the registration's work folder."""
    if not _member(user, registration.account_id):
        raise PrepareServiceError("not_found", _("No such registration."))
    report = registration.report or {}
    steps = report.get("preparation") or []
    if registration.status == RegStatus.FAILED:
        raise PrepareServiceError("not_inspected", _("The last inspection of this model did not finish (it failed "
                                                     "or was cancelled): re-run it, then prepare."))
    if registration.status != RegStatus.DONE or not report:
        raise PrepareServiceError("not_inspected", _("The model has not been inspected yet."))
    if not steps:
        raise PrepareServiceError("nothing_to_do", _("The report lists no preparation steps."))
    partial = prepare_partial_file(registration=registration)
    if partial:
        raise PrepareServiceError("unsupported", _(
            "The folder upload holds only part of %(file)s: Prepare needs the whole weights. Register the model as "
            "an archive or from the Hub, and prepare that registration.") % {"file": partial})
    missing = missing_packages(steps, s3=s3_configured())
    if missing:
        raise PrepareServiceError("missing_extras", _("Preparation needs %(packages)s on the server: %(hint)s")
                                  % {"packages": ", ".join(missing), "hint": INSTALL_HINT})
    plan = prepare_disk_plan(registration=registration)
    if plan is not None and not plan.enough:
        raise PrepareServiceError("disk_full", _(
            "The server has not enough free disk to prepare this model: it needs about %(needed)s (the download, "
            "the converted weights and a margin) and %(free)s are free. Free some space on the server, then "
            "prepare.") % {"needed": filesize(plan.needed), "free": filesize(plan.free)})
    with transaction.atomic():
        Registration.objects.select_for_update().filter(pk=registration.pk).first()
        current = PrepareJob.objects.filter(registration=registration,
                                            status__in=(*ACTIVE, PrepareStatus.REVIEW)).first()
        if current is not None:
            return current
        job = PrepareJob.objects.create(
            registration=registration, account_id=registration.account_id, created_by=user, steps=list(steps),
            cast_to_16bit=bool(cast_to_16bit), old_report=report)
        from .jobs import KIND

        runtime.submit(KIND, subject_id=job.pk, owner=user)
        job.refresh_from_db()
    return job


def _locked(job: PrepareJob, user) -> PrepareJob:
    row = PrepareJob.objects.select_for_update().filter(pk=job.pk).first()
    if row is None or not _member(user, row.account_id):
        raise PrepareServiceError("not_found", _("No such preparation."))
    return row


def prepare_cancel(*, job: PrepareJob, user) -> PrepareJob:
    """A queued or paused job ends at once; a running one is asked to stop
    and does within a second (its sandboxed converter is killed). Its work
    folder is kept, so a new Prepare resumes the downloads."""
    with transaction.atomic():
        row = _locked(job, user)
        require_may_change(user=user, account_id=row.account_id, created_by_id=row.created_by_id)
        if row.job_id and row.status in (*ACTIVE, PrepareStatus.REVIEW):
            runtime.cancel(row.job_id)
            row.refresh_from_db()
    return row


def prepare_review(*, job: PrepareJob, user, accept: bool) -> PrepareJob:
    """The user's answer to the rope_scaling diff; the job resumes (only
    what is left: the edit, the re-inspection, storage)."""
    with transaction.atomic():
        row = _locked(job, user)
        require_may_change(user=user, account_id=row.account_id, created_by_id=row.created_by_id)
        if row.status != PrepareStatus.REVIEW:
            raise PrepareServiceError("not_in_review", _("This preparation is not waiting for a review."))
        row.rope_accept = bool(accept)
        row.save(update_fields=["rope_accept", "updated_at"])
        if row.job_id:
            runtime.resume(row.job_id)
        row.refresh_from_db()
    return row


def prepared_storage(prepared):
    """The storage that holds a prepared copy: this server's media folder, or the bucket of the settings
    (with the bucket the copy names)."""
    from .jobs import storage_backend
    from .storage import LocalStorage, S3Storage

    if prepared.backend == "s3":
        backend = storage_backend()
        if not isinstance(backend, S3Storage):
            raise PrepareServiceError("storage_failed", _("The bucket that holds this prepared copy is no longer "
                                                          "configured on this server."))
        return backend
    return LocalStorage(Path(settings.MEDIA_ROOT))


def prepared_zip_members(*, prepared) -> list:
    """(name, size, opener) of every file of a prepared copy, for a streamed zip; PrepareServiceError when the
    copy is gone."""
    storage = prepared_storage(prepared)
    try:
        return storage.members(prepared.stored)
    except PrepareError:
        raise PrepareServiceError("storage_failed", _(
            "The prepared folder is no longer stored. Prepare the model again to get a new copy.")) from None


def prepared_reinspect(*, registration: Registration, user):
    """Inspects the latest prepared copy again, in place (the rules may have
    changed since Prepare ran), and stores the new report on its run. A
    folder on this server only: reading headers takes milliseconds, so it
    runs in the request. A copy in a bucket is re-checked by preparing again."""
    from cfm.inspection import InspectOptions, SourceError, inspect
    from cfm.registry.limits import inspect_limits

    from .selectors import latest_prepared

    if not _member(user, registration.account_id):
        raise PrepareServiceError("not_found", _("No such registration."))
    prepared = latest_prepared(registration)
    if prepared is None:
        raise PrepareServiceError("nothing_prepared", _("This model has no prepared copy to inspect."))
    if prepared.folder is None:
        raise PrepareServiceError("unsupported", _("The prepared copy is in a bucket: prepare the model again to "
                                                   "inspect a new copy."))
    try:
        report = inspect(str(prepared.folder), options=InspectOptions(limits=inspect_limits())).to_dict()
    except SourceError:
        raise PrepareServiceError("storage_failed", _(
            "The prepared folder is no longer stored. Prepare the model again to get a new copy.")) from None
    # The report names its source: keep the one Prepare wrote rather than this server's folder path.
    report["source"] = prepared.report.get("source", registration.source)
    PrepareJob.objects.filter(pk=prepared.job.pk).update(new_report=report, updated_at=timezone.now())
    return report
