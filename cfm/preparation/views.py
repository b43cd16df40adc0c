"""The Prepare page of a registration: start, live progress (htmx polling
that stops when the job ends), cancel, the rope_scaling review, and the
result: old and new report side by side and where the folder is stored.

Every view reads the registration through registry.selectors, so another
account's registration (or job) is a 404, like one that does not exist."""
from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from cfm.accounts.permissions import OwnerOnly, may_change
from cfm.registry import selectors

from . import services
from .extras import INSTALL_HINT
from .models import PrepareJob, PrepareStatus
from .pipeline import STAGES
from .selectors import prepared_get
from .zipstream import zip_stream

#: error_code -> what the user is told (the job's English message is shown below it)
ERRORS = {
    "missing_extras": _("The server lacks the conversion libraries."),
    "unsafe_pickle": _("The weights file contains code, not only tensors. It was refused and never run."),
    "unreadable_weights": _("The weights could not be read."),
    "out_of_memory": _("The conversion went over its memory limit."),
    "time_limit": _("The conversion took longer than its time limit."),
    "worker_crashed": _("The conversion process stopped unexpectedly."),
    "tokenizer_failed": _("The tokenizer files could not be read or converted to tokenizer.json: check that they "
                          "are complete and not corrupt."),
    "disk_full": _("The server ran out of disk space while preparing this model; the partial files were removed."),
    "download_failed": _("Downloading the model failed. Prepare again to resume where it stopped."),
    "access_denied": _("The Hub refused access to the model: give the registration a token with access."),
    "source_unavailable": _("The model's files could not be read."),
    "cancelled": _("The preparation was cancelled. Prepare again to resume the downloads."),
    "verify_failed": _("The prepared weights did not match the originals; nothing was stored."),
    "storage_failed": _("The prepared folder could not be stored."),
    "bad_config": _("config.json is missing or invalid."),
    "unsupported": _("This source cannot be prepared."),
    "worker_lost": _("The worker running the preparation stopped several times."),
    "internal": _("An internal error stopped the preparation."),
}
STAGE_LABELS = {
    "starting": _("Starting"), "listing_files": _("Listing files"), "downloading": _("Downloading"),
    "convert_weights_to_safetensors": _("Converting weights to safetensors"),
    "generate_tokenizer_json": _("Generating tokenizer.json"), "add_tsfm_config": _("Adding tsfm_config.json"),
    "fix_safetensors_metadata": _("Fixing the safetensors metadata"), "fix_rope_scaling": _("Editing rope_scaling"),
    "verifying": _("Verifying the converted weights"), "inspecting": _("Inspecting the prepared folder"),
    "storing": _("Storing"), "done": _("Done"),
}


def _registration_or_404(request, pk):
    registration = selectors.registration_get(user=request.user, pk=pk)
    if registration is None:
        raise Http404
    return registration


def _job_or_404(registration, job_id) -> PrepareJob:
    job = PrepareJob.objects.filter(pk=job_id, registration=registration).select_related("job").first()
    if job is None:
        raise Http404
    return job


def _compare(old: dict | None, new: dict | None) -> list[dict]:
    old_checks = {c["id"]: c for c in (old or {}).get("checks", [])}
    new_checks = {c["id"]: c for c in (new or {}).get("checks", [])}
    ids = list(old_checks) + [i for i in new_checks if i not in old_checks]
    return [{"id": i, "old": old_checks.get(i), "new": new_checks.get(i),
             "changed": (old_checks.get(i) or {}).get("status") != (new_checks.get(i) or {}).get("status")}
            for i in ids]


def _files(job: PrepareJob) -> list[dict]:
    rows = []
    for name, f in sorted(((job.progress or {}).get("files") or {}).items()):
        total, done = int(f.get("total") or 0), int(f.get("done") or 0)
        rows.append({"name": name, "done": done, "total": total,
                     "pct": 100 if total == 0 and done == 0 else min(100, int(done * 100 / total)) if total else 0})
    return rows


def _stages(job: PrepareJob) -> list[tuple[str, str]]:
    wanted = ["listing_files", "downloading", *[s for s in STAGES if s in (job.steps or [])], "inspecting", "storing"]
    if job.status == PrepareStatus.DONE:
        return [(s, "done") for s in wanted]
    # Verifying belongs to the conversion it checks.
    current = "convert_weights_to_safetensors" if job.stage == "verifying" else job.stage
    index = wanted.index(current) if current in wanted else -1
    # The stage a job ended in is where it failed or was stopped, no longer the one under way.
    ended = {PrepareStatus.FAILED.value: "failed", PrepareStatus.CANCELLED.value: "cancelled"}.get(job.status, "now")
    return [(s, "done" if i < index else ended if i == index else "todo") for i, s in enumerate(wanted)]


def _context(registration, job: PrepareJob | None, user) -> dict:
    report = registration.report or {}
    missing = services.prepare_missing_packages(registration=registration)
    diff_lines = []
    if job and job.rope_diff:
        for line in job.rope_diff.splitlines():
            kind = "add" if line.startswith("+") and not line.startswith("+++") else \
                "del" if line.startswith("-") and not line.startswith("---") else \
                "hunk" if line.startswith("@@") else "ctx"
            diff_lines.append({"kind": kind, "text": line})
    summary_steps = ((job.summary or {}).get("steps") or {}) if job else {}
    progress = (job.progress or {}) if job else {}
    partial_file = services.prepare_partial_file(registration=registration)
    steps = report.get("preparation") or []
    disk = services.prepare_disk_plan(registration=registration) if steps and not partial_file else None
    return {
        "reg": registration, "report": report, "steps": report.get("preparation") or [], "job": job,
        "job_number": job.number if job else None,
        # Cancelling or answering a job is for the member who started it and the account's owners.
        "may_change": job is None or may_change(user=user, account_id=job.account_id, created_by_id=job.created_by_id),
        "missing": missing, "install_hint": INSTALL_HINT, "s3": services.s3_configured(),
        "partial_file": partial_file,
        "register_archive_url": f"{reverse('register')}?via=archive&account={registration.account_id}",
        "register_hub_url": f"{reverse('register')}?via=hub&account={registration.account_id}",
        "disk": disk,
        "can_start": bool(steps) and registration.status == "done" and not missing
        and not partial_file and not (disk is not None and not disk.enough)
        and not (job and (job.is_active or job.status == PrepareStatus.REVIEW)),
        "has_convert": "convert_weights_to_safetensors" in (report.get("preparation") or []),
        "files": _files(job) if job else [], "stages": _stages(job) if job else [],
        "stage_labels": STAGE_LABELS, "stage_label": STAGE_LABELS.get(job.stage, job.stage) if job else "",
        "rate": progress.get("rate") or 0, "eta": progress.get("eta"),
        "error_text": ERRORS.get(job.error_code, _("The preparation failed.")) if job else "",
        "comparison": _compare(job.old_report, job.new_report) if job and job.new_report else [],
        "diff_lines": diff_lines, "convert": summary_steps.get("convert_weights_to_safetensors"),
        "summary_steps": summary_steps,
        "manifest": sorted((job.manifest or {}).items()) if job else [],
    }


@login_required
def prepare_page(request, pk: int):
    registration = _registration_or_404(request, pk)
    if request.method == "POST":
        try:
            services.prepare_start(registration=registration, user=request.user,
                                   cast_to_16bit=request.POST.get("cast_to_16bit") == "on")
        except services.PrepareServiceError as exc:
            messages.error(request, exc.message)
        return redirect("prepare", pk=registration.pk)
    job = PrepareJob.objects.filter(registration=registration).select_related("job").first()
    return render(request, "preparation/prepare.html", _context(registration, job, request.user))


@login_required
def prepare_live(request, pk: int, job_id: int):
    """The polled fragment; once the job has ended it comes without the
    polling trigger, so polling stops."""
    registration = _registration_or_404(request, pk)
    job = _job_or_404(registration, job_id)
    return render(request, "preparation/_live.html", _context(registration, job, request.user))


@login_required
@require_POST
def prepare_cancel(request, pk: int, job_id: int):
    registration = _registration_or_404(request, pk)
    job = _job_or_404(registration, job_id)
    try:
        services.prepare_cancel(job=job, user=request.user)
    except (services.PrepareServiceError, OwnerOnly) as exc:
        messages.error(request, exc.message)
    return redirect("prepare", pk=registration.pk)


@login_required
@require_POST
def prepare_review(request, pk: int, job_id: int):
    registration = _registration_or_404(request, pk)
    job = _job_or_404(registration, job_id)
    try:
        services.prepare_review(job=job, user=request.user, accept=request.POST.get("accept") == "1")
    except (services.PrepareServiceError, OwnerOnly) as exc:
        messages.error(request, exc.message)
    return redirect("prepare", pk=registration.pk)


@login_required
def prepared_download(request, pk: int, job_id: int):
    """A prepared copy as a zip, streamed as it is written (zipstream): any
    member of the account may take it, to upload it to the platform by hand."""
    registration = _registration_or_404(request, pk)
    prepared = prepared_get(registration=registration, job_id=job_id)
    if prepared is None:
        raise Http404
    try:
        members = services.prepared_zip_members(prepared=prepared)
    except services.PrepareServiceError as exc:
        messages.error(request, exc.message)
        return redirect("prepare", pk=registration.pk)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", registration.source)[:80].strip("-.") or "model"
    root = f"{name}-prepared-{prepared.number}"
    response = StreamingHttpResponse(zip_stream(members, root=root), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{root}.zip"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def prepared_reinspect(request, pk: int):
    registration = _registration_or_404(request, pk)
    try:
        report = services.prepared_reinspect(registration=registration, user=request.user)
    except services.PrepareServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The prepared copy was inspected again: it is deployable.") if report.get(
            "deployable") else _("The prepared copy was inspected again: it is not deployable, see its report."))
    return redirect("registration", pk=registration.pk)
