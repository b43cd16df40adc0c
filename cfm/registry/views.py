"""Registration pages: register (three ways in), the registration's page with
its live progress and report, the report JSON, and the re-run / cancel /
delete actions. Every view reads through registry.selectors, so another
account's registration is a 404, exactly like one that does not exist."""
from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from cfm.accounts.permissions import OwnerOnly, may_change
from cfm.accounts.selectors import accounts_for
from cfm.inspection.hubids import is_revision
from cfm.registry import hooks, selectors, services
from cfm.registry.models import SourceKind, Status
from cfm.workers.heartbeat import workers_live

from . import presenters
from .forms import ArchiveForm, FolderForm, HubForm, plan_refusal
from .limits import inspect_limits
from .texts import check_message

KINDS = ("hub", "folder", "archive")


def _pick_account(request, accounts):
    wanted = request.POST.get("account") or request.GET.get("account")
    if wanted:
        for a in accounts:
            if str(a.pk) == str(wanted):
                return a
        return None  # another account's id: nothing to pick (404 below)
    return next((a for a in accounts if a.may_use_custom_models), accounts[0] if accounts else None)


def _error_text(exc) -> str:
    # The service's message is already in the request's language (gettext).
    return str(getattr(exc, "message", "") or exc)


def _service_kwargs(kind: str, form) -> dict:
    data = form.cleaned_data
    if kind == "hub":
        return {"source_kind": SourceKind.HUB, "source": data["source"], "revision": data["revision"],
                "token": data["token"] or None}
    if kind == "archive":
        return {"source_kind": SourceKind.ARCHIVE, "source": data["archive"].name[:300], "archive": data["archive"]}
    return {"source_kind": SourceKind.FOLDER, "source": data["folder"], "folder_files": form.folder_files,
            "folder_sizes": form.folder_sizes}


def _register_post(request, account, kind: str, form, wants_json: bool):
    """Validates and registers. Returns (response or None, status, duplicate):
    a response when the browser moves on (or the folder script gets JSON),
    otherwise the page is shown again with the form's errors."""
    if account is None or not account.may_use_custom_models:
        if wants_json:
            return JsonResponse({"errors": {"__all__": [plan_refusal()]}}, status=403), 403, None
        messages.error(request, plan_refusal())
        return None, 403, None
    status, duplicate = 400, None
    if form.is_valid():
        try:
            registration, created = services.registration_create(account=account, user=request.user,
                                                                  **_service_kwargs(kind, form))
        except services.RegistrationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, _error_text(exc))
            status = 403 if exc.code == "plan_not_allowed" else 400
        except OwnerOnly as exc:
            form.add_error("token" if "token" in form.fields else None, exc.message)
            status = 403
        else:
            url = reverse("registration", args=[registration.pk])
            if created:
                if wants_json:
                    return JsonResponse({"url": url, "id": registration.pk}, status=201), 201, None
                return redirect(url), 302, None
            # Same account, same source and revision (or the same upload bytes).
            duplicate = {"url": url, "name": str(registration)}
            if wants_json:
                message = _("This model is already registered in this account.")
                return JsonResponse({"duplicate": duplicate, "errors": {"__all__": [message]}}, status=409), 409, None
            status = 200
    if wants_json:
        errors = {k: [str(m) for m in v] for k, v in form.errors.items()}
        return JsonResponse({"errors": errors}, status=status), status, None
    return None, status, duplicate


@login_required
def register(request):
    accounts = list(accounts_for(user=request.user))
    account = _pick_account(request, accounts)
    if accounts and account is None:
        raise Http404
    kind = request.POST.get("kind") or request.GET.get("via") or "hub"
    kind = kind if kind in KINDS else "hub"
    posted = request.method == "POST"
    hub_form = HubForm(request.POST if posted and kind == "hub" else None, prefix="hub")
    archive_form = ArchiveForm(request.POST if posted and kind == "archive" else None,
                               request.FILES if posted and kind == "archive" else None, prefix="archive")
    status, duplicate = 200, None
    if posted:
        form = {"hub": hub_form, "archive": archive_form}.get(kind) or FolderForm(request.POST, files=request.FILES)
        wants_json = request.headers.get("x-requested-with") == "fetch"
        response, status, duplicate = _register_post(request, account, kind, form, wants_json)
        if response is not None:
            return response

    limits = inspect_limits()
    return render(request, "registry/register.html", {
        "accounts": accounts, "account": account, "kind": kind,
        "allowed": bool(account and account.may_use_custom_models),
        "plan_refusal": plan_refusal(),
        "hub_form": hub_form, "archive_form": archive_form, "duplicate": duplicate,
        "max_header_bytes": limits.max_header_bytes, "max_small_bytes": limits.max_small_file_bytes,
        "max_upload_bytes": settings.CFM_UPLOAD_MAX_BYTES, "max_files": limits.archive_max_files,
    }, status=status)


def _get_or_404(request, pk):
    registration = selectors.registration_get(user=request.user, pk=pk)
    if registration is None:
        raise Http404
    return registration


STEPS = ("listing_files", "reading_config", "reading_headers", "checking")

#: A failed job's error code -> (what happened, what to do), in the reader's language. gettext_lazy by its own
#: name: makemessages extracts `_` and the gettext names, never an alias such as `_l`.
JOB_ERRORS = {
    "repo_not_found": (
        gettext_lazy("The Hub has no repository of that name."),
        gettext_lazy("Check the organisation and the name (they are case-sensitive), then register again.")),
    "revision_not_found": (
        gettext_lazy("The repository has no such branch, tag or commit."),
        gettext_lazy("Check the revision, or leave it empty for the default branch.")),
    "access_denied": (
        gettext_lazy("The Hub refused access: the repository is gated or private."),
        gettext_lazy("Accept the model's licence on the Hub and register again with an access token that can "
                     "read it.")),
    "hub_unavailable": (
        gettext_lazy("The Hub could not be reached."),
        gettext_lazy("This is usually temporary: re-run the inspection in a few minutes.")),
    "source_unreadable": (
        gettext_lazy("The model's files could not be read."),
        gettext_lazy("Check that the archive or folder is complete and not corrupt, then register it again.")),
    "too_large": (
        gettext_lazy("The source is larger than this server inspects."),
        gettext_lazy("Register the folder instead of an archive: only its headers are sent.")),
    "timeout": (
        gettext_lazy("The inspection took too long and was stopped."),
        gettext_lazy("Re-run it; if it happens again, the source may be very slow to answer.")),
    "cancelled": (gettext_lazy("The inspection was cancelled."), gettext_lazy("Re-run it when you are ready.")),
}


def _steps(registration) -> list[tuple[str, str]]:
    if registration.status == "queued":
        return [(k, "todo") for k in STEPS]
    current = STEPS.index(registration.progress_step) if registration.progress_step in STEPS else 0
    return [(k, "done" if i < current else "now" if i == current else "todo") for i, k in enumerate(STEPS)]


def _hub_url(registration) -> str:
    # A row stored before the revision validator (say "main/../../x") must not turn the link into another page.
    url = f"{settings.HF_ENDPOINT}/{quote(registration.source, safe='/')}"
    revision = registration.resolved_commit or registration.revision
    return f"{url}/tree/{quote(revision, safe='/')}" if revision and is_revision(revision) else url


def _waiting_for_worker(registration) -> bool:
    """Queued, and no worker that takes inspections has written a heartbeat
    for a minute: nothing will start it until one is back."""
    if registration.status != Status.QUEUED or settings.CFM_EAGER_CELERY:
        return False
    from celery import current_app

    # The queue inspections are sent on: the app's default, read on every send as the runtime does.
    return not workers_live(queue=current_app.conf.task_default_queue)


def _report_context(request, registration, report: dict | None, partial_file, *, current: bool) -> dict:
    """What the report shows beyond the stored JSON: the verdict's badge and
    buttons, the memory per configuration at the reader's sequence length,
    the time-series sizing for the reader's figures (GET parameters).
    `current`: the report may act (a prepared copy, or the latest inspection's)."""
    if not report:
        return {"verdict": None}
    verdict = presenters.verdict_of(report)
    size_check = next((c for c in report.get("checks") or [] if c.get("id") == "size"), None)
    sequence_length, sequence_error = presenters.parse_sequence_length(request.GET.get("sequence_length"), report)
    ctx: dict[str, Any] = {
        "verdict": verdict, "badge": presenters.badge(verdict), "headline": presenters.headline(verdict),
        "actions": presenters.actions(report, current=current, prepare_possible=not partial_file),
        "weights_summary": presenters.weights_summary(report),
        "files_summary": presenters.files_summary(report),
        "sequence_length": sequence_length, "sequence_error": sequence_error,
        "memory_rows": presenters.memory_rows(report, sequence_length),
        "quantized": presenters.quantized_estimates(report),
        "dtype_bars": presenters.dtype_bars(report),
        "reason": presenters.recommendation_reason(report, check_message(size_check) if size_check else None),
    }
    if report.get("family") == "time_series":
        ts = presenters.time_series_sizing(request.GET.get("users"), request.GET.get("payload"))
        ctx["ts"] = ts
        ctx["ts_users"] = request.GET.get("users", "")
        ctx["ts_payload"] = request.GET.get("payload", "")
    return ctx


def _detail_context(request, registration) -> dict:
    # What the apps built on the registry add: Prepare, whether a folder upload can be prepared and the latest
    # prepared copy (cfm.preparation.selectors.Prepared); the quota, the deployments that still run.
    extras = hooks.detail_context(registration)
    # The latest prepared copy is the model's current state (what Deploy uses); the original report stays one
    # click away (?report=original).
    prepared = extras.get("prepared")
    showing_prepared = prepared is not None and request.GET.get("report") != "original"
    report = (prepared.report if showing_prepared and prepared is not None else registration.report) or None
    counts = {"pass": 0, "warn": 0, "fail": 0, "skip": 0}
    for c in (report or {}).get("checks", []):
        counts[c.get("status", "skip")] = counts.get(c.get("status", "skip"), 0) + 1
    error_text, error_help = JOB_ERRORS.get(registration.error_code, (registration.error_message, None))
    reused_url = reverse("registration", args=[registration.reused_from_id]) if registration.reused_from_id else ""
    return {"reg": registration, "report": report, "counts": counts, "steps": _steps(registration),
            "showing_prepared": showing_prepared,
            "current_verdict": presenters.verdict_of(prepared.report if prepared else registration.report),
            "reused_url": reused_url, "hub_url": _hub_url(registration), **extras,
            "error_text": error_text or _("The inspection failed."), "error_help": error_help,
            "waiting_for_worker": _waiting_for_worker(registration),
            # Members see every registration of the account; cancel, delete and the token are the maker's or an owner's.
            "may_change": may_change(user=request.user, account_id=registration.account_id,
                                     created_by_id=registration.created_by_id),
            **_report_context(request, registration, report, extras.get("prepare_partial_file"),
                              current=showing_prepared or (prepared is None and registration.status == Status.DONE))}


@login_required
def registration_detail(request, pk: int):
    registration = _get_or_404(request, pk)
    return render(request, "registry/detail.html", _detail_context(request, registration))


@login_required
def registration_live(request, pk: int):
    """The polled fragment: progress while the job runs; once it has ended,
    the report (or the error) without the polling trigger, so polling stops."""
    registration = _get_or_404(request, pk)
    return render(request, "registry/_live.html", _detail_context(request, registration))


@login_required
def registration_report_json(request, pk: int):
    registration = _get_or_404(request, pk)
    if not registration.report:
        raise Http404
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(registration))[:80].strip("-") or "model"
    response = HttpResponse(json.dumps(registration.report, indent=2, ensure_ascii=False),
                            content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="cfm-report-{registration.pk}-{name}.json"'
    return response


def _action(request, pk: int, service, done_message: str, *, to_list: bool = False):
    registration = _get_or_404(request, pk)
    try:
        service(registration=registration, user=request.user)
    except services.RegistrationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("registration", pk=pk)
    except OwnerOnly as exc:
        messages.error(request, exc.message)
        return redirect("registration", pk=pk)
    messages.success(request, done_message)
    if to_list:
        return redirect("dashboard")
    return redirect("registration", pk=pk)


@login_required
@require_POST
def registration_rerun(request, pk: int):
    # After access_denied the page offers a token field: the new token
    # replaces the stored one for this registration's jobs.
    token = (request.POST.get("token") or "").strip() or None

    def rerun(*, registration, user):
        return services.registration_rerun(registration=registration, user=user, token=token)

    return _action(request, pk, rerun, _("Inspection queued again."))


@login_required
@require_POST
def registration_forget_token(request, pk: int):
    return _action(request, pk, services.registration_forget_token, _("The stored access token was deleted."))


@login_required
@require_POST
def registration_cancel(request, pk: int):
    return _action(request, pk, services.registration_cancel, _("Cancellation requested."))


@login_required
@require_POST
def registration_delete(request, pk: int):
    return _action(request, pk, services.registration_delete, _("Registration deleted."), to_list=True)
