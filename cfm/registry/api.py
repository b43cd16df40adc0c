"""API v1: registrations and their reports (docs/api.md)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja import Status as Answer

from cfm.accounts.api import account_or_404
from cfm.apitools import ApiError, iso, paginate, parse_body

from . import selectors, services
from .models import Registration, SourceKind, Status

router = Router(tags=["registrations"])

REPORT_SCHEMA = Path(__file__).resolve().parent.parent / "inspection" / "report_schema.json"


# --- shapes ------------------------------------------------------------------------------------------------

class Progress(Schema):
    step: str
    done: int
    total: int
    bytes_done: int
    bytes_total: int


class ErrorOut(Schema):
    code: str
    message: str


class RegistrationOut(Schema):
    id: int
    account: int
    source: str
    source_kind: Literal["hub", "archive", "folder"]
    revision: str
    resolved_commit: str | None
    status: Literal["queued", "fetching", "inspecting", "done", "failed"]
    progress: Progress
    error: ErrorOut | None
    report_url: str | None
    #: the report's one-word verdict (the badge on every page) and its configuration; null until the
    #: inspection is done. Columns written with the report: a list of any length reads no report JSON.
    verdict: Literal["ready", "prepare", "uncertified", "refused"] | None
    configuration: Literal["small", "medium", "large", "extra_large"] | None
    has_token: bool
    attempts: int
    created_at: str
    updated_at: str
    finished_at: str | None


class RegistrationPage(Schema):
    items: list[RegistrationOut]
    next: str | None


class RegistrationIn(Schema):
    account: int
    source: str
    revision: str | None = None  # none or empty: "main" (services.DEFAULT_REVISION)
    token: str | None = None


class RerunIn(Schema):
    token: str | None = None


class ListFilter(Schema):
    account: int | None = None
    status: str | None = None


def registration_json(request, r: Registration) -> dict[str, Any]:
    done = r.status == Status.DONE
    report_url = reverse("api:registration_report", kwargs={"registration_id": r.pk})
    return {
        "id": r.pk,
        "account": r.account_id,
        "source": r.source,
        "source_kind": r.source_kind,
        "revision": r.revision,
        "resolved_commit": r.resolved_commit or None,
        "status": r.status,
        "progress": {"step": r.progress_step, "done": r.progress_done, "total": r.progress_total,
                     "bytes_done": r.bytes_done, "bytes_total": r.bytes_total},
        "error": {"code": r.error_code, "message": r.error_message} if r.status == Status.FAILED else None,
        "report_url": request.build_absolute_uri(report_url) if done else None,
        "verdict": (r.verdict or None) if done else None,
        "configuration": (r.configuration or None) if done else None,
        "has_token": _has_token(r),
        "attempts": r.attempts,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "finished_at": iso(r.finished_at),
    }


def _has_token(r: Registration) -> bool:
    annotated = getattr(r, "has_token", None)  # lists: annotated, the token itself is never loaded
    return bool(r.token_encrypted) if annotated is None else bool(annotated)


def registration_or_404(request, registration_id) -> Registration:
    r = selectors.registration_get(user=request.user, pk=registration_id)
    if r is None:
        raise ApiError("not_found", _("No such registration."))
    return r


def _refusal(exc: services.RegistrationError) -> ApiError:
    if exc.status == 400:
        return ApiError("invalid", exc.message, fields={exc.field or "body": exc.message}, reason=exc.code)
    return ApiError(exc.code, exc.message, **({"field": exc.field} if exc.field else {}), **exc.extra)


# --- endpoints ---------------------------------------------------------------------------------------------

_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {
                "type": "object", "required": ["account", "source"],
                "properties": {
                    "account": {"type": "integer"},
                    "source": {"type": "string", "description": "org/name or hf://org/name"},
                    "revision": {"type": "string", "description": "branch, tag or commit; default: main"},
                    "token": {"type": "string", "description": "Hub token for gated or private repos; "
                                                               "kept encrypted, never shown again"},
                }}},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["account", "archive"],
                "properties": {"account": {"type": "integer"},
                               "archive": {"type": "string", "format": "binary",
                                           "description": ".zip, .tar, .tar.gz or .tgz"}}}},
        },
    },
}


@router.post("/registrations", response={200: RegistrationOut, 201: RegistrationOut},
             summary="Register a Hub repo (JSON) or an archive (multipart)", openapi_extra=_CREATE_BODY)
def registration_create(request):
    """201 with the new registration, its inspection queued; 200 with the
    existing one for a duplicate (same account, same repo and revision as
    given, or the same archive bytes)."""
    content_type = request.content_type or ""
    if content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
        kwargs = _form_input(request)
    else:
        kwargs = _json_input(request)
    account = account_or_404(request, kwargs.pop("account"))
    try:
        registration, created = services.registration_create(account=account, user=request.user, **kwargs)
    except services.RegistrationError as exc:
        raise _refusal(exc) from None
    return Answer(201 if created else 200, registration_json(request, registration))


def _json_input(request) -> dict[str, Any]:
    payload = parse_body(request, RegistrationIn)
    return {"account": payload.account, "source_kind": SourceKind.HUB, "source": payload.source,
            "revision": payload.revision, "token": payload.token}


def _form_input(request) -> dict[str, Any]:
    # Refuse an oversized upload before Django reads it to a temporary file.
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.CFM_UPLOAD_MAX_BYTES + 1024 * 1024:
        raise ApiError("too_large", _("The upload is %(size)s bytes, over the limit of %(cap)s bytes.")
                       % {"size": length, "cap": settings.CFM_UPLOAD_MAX_BYTES})
    account = request.POST.get("account", "")
    if not account.strip().isdigit():
        raise ApiError("invalid", _("account must be an account id."), fields={"account": "required"})
    archive = request.FILES.get("archive")
    if archive is None and request.POST.get("source"):
        return {"account": int(account), "source_kind": SourceKind.HUB, "source": request.POST["source"],
                "revision": request.POST.get("revision", ""), "token": request.POST.get("token") or None}
    if archive is None:
        raise ApiError("invalid", _("Attach the archive as the “archive” file field."),
                       fields={"archive": "required"})
    return {"account": int(account), "source_kind": SourceKind.ARCHIVE, "source": archive.name, "archive": archive}


@router.get("/registrations", response=RegistrationPage, summary="Registrations of your accounts, newest first")
def registration_list(request, filters: Query[ListFilter]):
    account = account_or_404(request, filters.account) if filters.account is not None else None
    qs = selectors.registrations_for(user=request.user, account=account)
    if filters.status:
        if filters.status not in Status.values:
            message = _("status must be one of %(allowed)s.") % {"allowed": ", ".join(Status.values)}
            raise ApiError("invalid", message, fields={"status": message}, allowed=list(Status.values))
        qs = qs.filter(status=filters.status)
    return paginate(request, qs, lambda r: registration_json(request, r))


@router.get("/registrations/{registration_id}", response=RegistrationOut, url_name="registration_detail",
            summary="A registration and the state of its inspection job")
def registration_detail(request, registration_id: int):
    return registration_json(request, registration_or_404(request, registration_id))


@router.get("/registrations/{registration_id}/report", response=dict, url_name="registration_report",
            summary="The compatibility report (report-contract.md); 404 until the inspection is done")
def registration_report(request, registration_id: int):
    r = registration_or_404(request, registration_id)
    if r.status != Status.DONE or r.report is None:
        raise ApiError("not_found", _("The report is not ready: the registration is %(status)s.")
                       % {"status": r.status}, registration_status=r.status)
    return r.report


@router.post("/registrations/{registration_id}/rerun", response={202: RegistrationOut},
             summary="Inspect again (a running job is left alone)",
             openapi_extra={"requestBody": {"required": False, "content": {"application/json": {"schema": {
                 "type": "object", "properties": {"token": {"type": "string"}}}}}}})
def registration_rerun(request, registration_id: int):
    r = registration_or_404(request, registration_id)
    token = parse_body(request, RerunIn, required=False).token or None  # optional: replaces the stored token
    try:
        r = services.registration_rerun(registration=r, user=request.user, token=token)
    except services.RegistrationError as exc:
        raise _refusal(exc) from None
    return Answer(202, registration_json(request, r))


@router.post("/registrations/{registration_id}/cancel", response={202: RegistrationOut},
             summary="Stop a queued or running inspection (status failed, code cancelled)")
def registration_cancel(request, registration_id: int):
    r = registration_or_404(request, registration_id)
    try:
        r = services.registration_cancel(registration=r, user=request.user)
    except services.RegistrationError as exc:
        raise _refusal(exc) from None
    return Answer(202, registration_json(request, r))


@router.delete("/registrations/{registration_id}", response={204: None},
               summary="Delete a registration, its upload and its stored Hub token")
def registration_delete(request, registration_id: int):
    r = registration_or_404(request, registration_id)
    try:
        services.registration_delete(registration=r, user=request.user)
    except services.RegistrationError as exc:
        raise _refusal(exc) from None
    return Answer(204, None)


@router.delete("/registrations/{registration_id}/token", response={204: None},
               summary="Delete the stored Hub token of a registration")
def registration_token_delete(request, registration_id: int):
    r = registration_or_404(request, registration_id)
    services.registration_forget_token(registration=r, user=request.user)
    return Answer(204, None)


@router.get("/report-schema.json", auth=None, include_in_schema=True, summary="The report's JSON Schema")
def report_schema(request):
    return HttpResponse(REPORT_SCHEMA.read_bytes(), content_type="application/schema+json")
