"""Writes on Prepare jobs: start, cancel, answer the rope_scaling review.
Views, the API and commands call these; the worker side is jobs.py."""
from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cfm.accounts.models import Membership
from cfm.registry.models import Registration
from cfm.registry.models import Status as RegStatus

from .extras import INSTALL_HINT, missing_packages
from .models import ACTIVE, PrepareJob, PrepareStatus

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise


class PrepareServiceError(Exception):
    def __init__(self, code: str, message: str | StrPromise):
        super().__init__(message)
        self.code, self.message = code, message


def s3_configured() -> bool:
    return bool(settings.CFM_S3_BUCKET)


def prepare_missing_packages(*, registration: Registration) -> list[str]:
    steps = (registration.report or {}).get("preparation") or []
    return missing_packages(steps, s3=s3_configured())


def _enqueue_on_commit(job_id: int) -> None:
    from .jobs import enqueue

    transaction.on_commit(lambda: enqueue(job_id=job_id))


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
    if registration.status != RegStatus.DONE or not report:
        raise PrepareServiceError("not_inspected", _("The model has not been inspected yet."))
    if not steps:
        raise PrepareServiceError("nothing_to_do", _("The report lists no preparation steps."))
    missing = missing_packages(steps, s3=s3_configured())
    if missing:
        raise PrepareServiceError("missing_extras", _("Preparation needs %(packages)s on the server: %(hint)s")
                                  % {"packages": ", ".join(missing), "hint": INSTALL_HINT})
    with transaction.atomic():
        Registration.objects.select_for_update().filter(pk=registration.pk).first()
        current = PrepareJob.objects.filter(registration=registration,
                                            status__in=(*ACTIVE, PrepareStatus.REVIEW)).first()
        if current is not None:
            return current
        job = PrepareJob.objects.create(
            registration=registration, account_id=registration.account_id, created_by=user, steps=list(steps),
            cast_to_16bit=bool(cast_to_16bit), old_report=report)
        _enqueue_on_commit(job.pk)
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
        if row.status in (PrepareStatus.QUEUED, PrepareStatus.REVIEW):
            row.status = PrepareStatus.CANCELLED
            row.error_code = "cancelled"
            row.claim = ""
            row.finished_at = timezone.now()
            row.cancel_requested = True
            row.save()
        elif row.status == PrepareStatus.RUNNING:
            row.cancel_requested = True
            row.save(update_fields=["cancel_requested", "updated_at"])
    return row


def prepare_review(*, job: PrepareJob, user, accept: bool) -> PrepareJob:
    """The user's answer to the rope_scaling diff; the job resumes (only
    what is left: the edit, the re-inspection, storage)."""
    with transaction.atomic():
        row = _locked(job, user)
        if row.status != PrepareStatus.REVIEW:
            raise PrepareServiceError("not_in_review", _("This preparation is not waiting for a review."))
        row.rope_accept = bool(accept)
        row.status = PrepareStatus.QUEUED
        row.save(update_fields=["rope_accept", "status", "updated_at"])
        _enqueue_on_commit(row.pk)
    return row
