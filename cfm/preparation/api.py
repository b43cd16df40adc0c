"""API v1: Prepare jobs. Not named by api-contract.md (which allows
additions); shaped like the registration endpoints: the PrepareJob row is the
truth, ids of another account answer 404, errors use the common envelope."""
from __future__ import annotations

from typing import Any, Literal

from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Router, Schema
from ninja import Status as Answer

from cfm.accounts.api import iso, paginate
from cfm.accounts.selectors import accounts_for
from cfm.apitools import ApiError, parse_body
from cfm.registry.api import registration_or_404

from . import services
from .models import PrepareJob

router = Router(tags=["preparation"])

class FileProgress(Schema):
    done: int
    total: int


class PrepareProgress(Schema):
    files: dict[str, FileProgress]
    bytes_done: int
    bytes_total: int
    rate: float
    eta: float | None


class ErrorOut(Schema):
    code: str
    message: str


class StorageOut(Schema):
    backend: str
    location: str


class PrepareJobOut(Schema):
    id: int
    registration: int
    account: int
    status: Literal["queued", "running", "review", "done", "failed", "cancelled"]
    stage: str
    steps: list[str]
    cast_to_16bit: bool
    progress: PrepareProgress
    rope_diff: str | None
    error: ErrorOut | None
    new_report: dict | None
    storage: StorageOut | None
    manifest: dict[str, Any]
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    url: str


class PrepareJobPage(Schema):
    items: list[PrepareJobOut]
    next: str | None


class PrepareIn(Schema):
    cast_to_16bit: bool = False


class ReviewIn(Schema):
    accept: bool


def job_json(request, job: PrepareJob) -> dict[str, Any]:
    progress = job.progress or {}
    ended_badly = job.status in ("failed", "cancelled")
    return {
        "id": job.pk,
        "registration": job.registration_id,
        "account": job.account_id,
        "status": job.status,
        "stage": job.stage,
        "steps": list(job.steps or []),
        "cast_to_16bit": job.cast_to_16bit,
        "progress": {"files": progress.get("files") or {}, "bytes_done": job.bytes_done,
                     "bytes_total": job.bytes_total, "rate": float(progress.get("rate") or 0),
                     "eta": progress.get("eta")},
        "rope_diff": job.rope_diff or None,
        "error": {"code": job.error_code or job.status, "message": job.error_message} if ended_badly else None,
        "new_report": job.new_report if job.status == "done" else None,
        "storage": ({"backend": job.storage_backend, "location": job.storage_location}
                    if job.status == "done" and job.storage_location else None),
        "manifest": job.manifest or {},
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "url": request.build_absolute_uri(reverse("api:prepare_job_detail", kwargs={"job_id": job.pk})),
    }


def _job_or_404(request, job_id: int) -> PrepareJob:
    job = None
    if 0 < job_id < 2**63:  # beyond a bigint: no such row, not a database error
        job = PrepareJob.objects.filter(pk=job_id, account__in=accounts_for(user=request.user)).first()
    if job is None:
        raise ApiError("not_found", _("No such preparation."))
    return job


def _refusal(exc: services.PrepareServiceError) -> ApiError:
    return ApiError(exc.code, str(exc.message), app="preparation")


@router.post("/registrations/{registration_id}/prepare", response={202: PrepareJobOut},
             summary="Start Prepare for a registration whose report lists preparation steps",
             openapi_extra={"requestBody": {"required": False, "content": {"application/json": {"schema": {
                 "type": "object", "properties": {"cast_to_16bit": {"type": "boolean"}}}}}}})
def prepare_start(request, registration_id: int):
    """202 with the queued job; a job already queued, running or waiting for
    review is returned as it is (two jobs never share a work folder)."""
    registration = registration_or_404(request, registration_id)
    payload = parse_body(request, PrepareIn, required=False)
    try:
        job = services.prepare_start(registration=registration, user=request.user,
                                     cast_to_16bit=payload.cast_to_16bit)
    except services.PrepareServiceError as exc:
        raise _refusal(exc) from None
    return Answer(202, job_json(request, job))


@router.get("/registrations/{registration_id}/prepare-jobs", response=PrepareJobPage,
            summary="The Prepare jobs of a registration, newest first")
def prepare_list(request, registration_id: int):
    registration = registration_or_404(request, registration_id)
    qs = PrepareJob.objects.filter(registration=registration).defer("old_report")
    return paginate(request, qs, lambda job: job_json(request, job))


@router.get("/prepare-jobs/{job_id}", response=PrepareJobOut, url_name="prepare_job_detail",
            summary="A Prepare job: stage, per-file progress, result and storage")
def prepare_detail(request, job_id: int):
    return job_json(request, _job_or_404(request, job_id))


@router.post("/prepare-jobs/{job_id}/cancel", response={202: PrepareJobOut},
             summary="Stop a Prepare job (its downloads are kept for the next one)")
def prepare_cancel(request, job_id: int):
    job = _job_or_404(request, job_id)
    try:
        job = services.prepare_cancel(job=job, user=request.user)
    except services.PrepareServiceError as exc:
        raise _refusal(exc) from None
    return Answer(202, job_json(request, job))


@router.post("/prepare-jobs/{job_id}/review", response={202: PrepareJobOut},
             summary="Accept or refuse the rope_scaling edit a job waits on",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "required": ["accept"], "properties": {"accept": {"type": "boolean"}}}}}}})
def prepare_review(request, job_id: int):
    job = _job_or_404(request, job_id)
    payload = parse_body(request, ReviewIn)
    try:
        job = services.prepare_review(job=job, user=request.user, accept=payload.accept)
    except services.PrepareServiceError as exc:
        raise _refusal(exc) from None
    return Answer(202, job_json(request, job))
