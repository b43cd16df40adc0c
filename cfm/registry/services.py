"""Writes on registrations: create (Hub repo, archive upload, folder
snapshot), re-run, cancel, delete, forget the token.

Every caller (the API, the pages, the admin, the commands) goes through
these. Each inspection is a run of the job runtime (cfm.jobs.runtime.submit):
its Job row is saved with the registration and its message queued on commit;
when the broker is down the row stays in the outbox and the sweeper queues it
later. Registrations are never refused because the broker is down.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils.translation import gettext as _

from cfm.accounts.models import Account, Membership
from cfm.accounts.permissions import require_may_change
from cfm.errors import http_status
from cfm.inspection.archives import looks_like_archive
from cfm.inspection.hubids import is_repo_id, is_revision
from cfm.inspection.sources import ARCHIVE_SUFFIXES, SourceError, safe_member_name, wants_whole
from cfm.jobs import runtime

from .limits import FOLDER_FILE_MAX_BYTES, inspect_limits
from .models import ACTIVE_STATUSES, Registration, SourceKind, Status
from .secrets import token_encrypt

log = logging.getLogger(__name__)

#: The revision of a Hub registration that names none (api-contract.md).
DEFAULT_REVISION = "main"

_TOKEN = re.compile(r"^[\x21-\x7e]{1,400}$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


#: Sent once a registration is deleted (after commit), for the apps that
#: keep files for it: kwargs registration_id, account_id, prepared (its
#: Prepare results: [{"backend", "location"}]), deployment_ids.
registration_deleted = Signal()


class RegistrationError(Exception):
    """A registration refused for its input. `code`: plan_not_allowed (403),
    not_found (404), too_large (413), or a 400 reason: invalid_source,
    invalid_revision, invalid_token, not_an_archive, empty_folder,
    invalid_folder, not_active; disk_full (507) when the server has no room
    for the upload. `field` names the input at fault."""

    def __init__(self, code: str, message: str, field: str | None = None, **extra):
        super().__init__(message)
        self.code, self.message, self.field, self.extra = code, message, field, extra

    @property
    def status(self) -> int:
        return http_status(self.code)


# --- helpers ---------------------------------------------------------------------------------------------

def uploads_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "uploads"


def upload_dir(registration: Registration) -> Path:
    return uploads_root() / str(registration.pk)


def normalize_repo_id(source: str) -> str:
    """`hf://org/name` or `org/name` → `org/name`; RegistrationError if it is not a repo id."""
    repo = (source or "").strip()
    if repo.lower().startswith("hf://"):
        repo = repo[5:]
    if not is_repo_id(repo):
        raise RegistrationError(
            "invalid_source",
            _("“%(source)s” is not a Hugging Face repo id: use org/name (letters, digits, “-”, “_”, “.”).")
            % {"source": source[:200]},
            field="source")
    return repo


def _check_access(*, account: Account, user) -> None:
    # The views resolve `account` through the selectors already; this keeps a
    # service called from elsewhere from writing into a stranger's account.
    if not Membership.objects.filter(account=account, user=user).exists():
        raise RegistrationError("not_found", _("No such account."), field="account")
    if not account.may_use_custom_models:
        raise RegistrationError(
            "plan_not_allowed",
            _("The %(plan)s plan cannot register custom foundation models; only the Standard plan can.")
            % {"plan": account.get_plan_display()},
            field="account")


def _chunks(data: Any) -> Iterator[bytes]:
    """Chunks of an UploadedFile, a file object or bytes: never the whole
    upload in memory at once."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
        return
    if hasattr(data, "chunks"):
        if hasattr(data, "seek"):
            data.seek(0)
        yield from data.chunks(1024 * 1024)
        return
    while chunk := data.read(1024 * 1024):
        yield chunk


def _store(data: Any, dest: Path, cap: int, what: str) -> tuple[int, str]:
    """Streams `data` to `dest`; returns (bytes, sha256). too_large past `cap`."""
    digest, size = hashlib.sha256(), 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        for chunk in _chunks(data):
            size += len(chunk)
            if size > cap:
                raise RegistrationError(
                    "too_large", _("%(what)s is larger than the upload limit of %(cap)s bytes.")
                    % {"what": what, "cap": cap}, field="archive")
            digest.update(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


def _safe_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    lower = base.lower()
    suffix = next((s for s in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True) if lower.endswith(s)), "")
    stem = _SAFE_NAME.sub("_", base[: len(base) - len(suffix)]).strip("._") or "upload"
    return stem[:100] + suffix


def _incoming() -> Path:
    path = uploads_root() / ".incoming" / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def _inspect(registration: Registration, user) -> None:
    """A new inspection run (a Job row, queued on commit; earlier runs are kept)."""
    from .jobs import KIND

    runtime.submit(KIND, subject_id=registration.pk, owner=user)
    registration.refresh_from_db()


def _existing(account: Account, **match: Any) -> Registration | None:
    return Registration.objects.filter(account=account, **match).order_by("-id").first()


# --- create ----------------------------------------------------------------------------------------------

def registration_create(
    *, account: Account, user, source_kind: str, source: str, revision: str | None = "", token: str | None = None,
    archive: Any = None, folder_files: Mapping[str, Any] | None = None, folder_sizes: Mapping[str, int] | None = None,
) -> tuple[Registration, bool]:
    """Registers a model and queues its inspection. Returns (registration,
    created); a duplicate (same account and the same repo and revision as
    given, or the same upload bytes) returns the existing one with False.

    - `source_kind="hub"`: `source` is `org/name` or `hf://org/name`;
      `revision` a branch, tag or commit ("" or None: "main"); `token`
      optional, kept encrypted for this registration's jobs only.
    - `source_kind="archive"`: `archive` an UploadedFile (or bytes / a file
      object) named `.zip`, `.tar`, `.tar.gz` or `.tgz`; `source` defaults to
      its name. Streamed to MEDIA_ROOT/uploads/<id>/, at most
      CFM_UPLOAD_MAX_BYTES.
    - `source_kind="folder"`: a snapshot of a local folder taken by the
      browser: `folder_sizes` {relative path: size in bytes} of EVERY file in
      the folder, `folder_files` {relative path: UploadedFile or bytes} with
      the small files whole (config.json, tokenizer files, *.json/*.txt/*.model
      at the root) and, for each `.safetensors` file, its first 8 + N bytes
      (the header). `source` is the folder's name. The worker inspects exactly
      this snapshot, as it would the whole folder.
    """
    if source_kind not in SourceKind.values:
        raise RegistrationError("invalid_source", _("Unknown kind of source."), field="source_kind")
    with transaction.atomic():
        # One registration at a time per account: two identical requests
        # racing would otherwise both miss the duplicate check.
        account = Account.objects.select_for_update().get(pk=account.pk)
        _check_access(account=account, user=user)
        if source_kind == SourceKind.HUB:
            return _create_hub(account=account, user=user, source=source, revision=revision, token=token)
    with _no_room_is_a_refusal():  # each one removes its half-written upload before this answers
        if source_kind == SourceKind.ARCHIVE:
            return _create_archive(account=account, user=user, source=source, archive=archive)
        return _create_folder(account=account, user=user, source=source, files=folder_files or {},
                              sizes=folder_sizes or {})


def _create_hub(*, account, user, source, revision, token) -> tuple[Registration, bool]:
    repo = normalize_repo_id(source)
    # Stored as the contract's default, so that "main" given or left out is one registration.
    revision = (revision or "").strip() or DEFAULT_REVISION
    if not is_revision(revision):
        raise RegistrationError("invalid_revision", _("“%(rev)s” is not a branch, tag or commit name.")
                                % {"rev": revision[:100]}, field="revision")
    token = (token or "").strip() or None
    if token is not None and not _TOKEN.match(token):
        raise RegistrationError("invalid_token", _("The access token has characters a Hub token never has."),
                                field="token")
    existing = _existing(account, source_kind=SourceKind.HUB, source=repo, revision=revision)
    if existing is not None:
        if token is not None:
            # A new token for the same repo (say, after access_denied) replaces the old one: the maker's or an
            # owner's to change.
            require_may_change(user=user, account_id=existing.account_id, created_by_id=existing.created_by_id)
            existing.token_encrypted = token_encrypt(token)
            existing.save(update_fields=["token_encrypted", "updated_at"])
        if existing.status == Status.FAILED:
            # Registering again after a failure (a token now given, the Hub
            # back, a cancel regretted) means: try again.
            _requeue(existing, user)
        return existing, False
    registration = Registration.objects.create(
        account=account, created_by=user, source_kind=SourceKind.HUB, source=repo, revision=revision,
        token_encrypted=token_encrypt(token) if token else "")
    _inspect(registration, user)
    return registration, True


def _archive_name(source: str, archive: Any) -> str:
    name = (getattr(archive, "name", "") or source or "").replace("\\", "/").rsplit("/", 1)[-1]
    return name[:300]


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def _no_room_is_a_refusal():
    """A full disk while an upload is stored is the server's fault, said plainly
    and without a path; the caller's `finally` removes what was half written."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _NO_SPACE:
            raise
        log.error("upload refused: the disk is full (%s)", exc)
        raise RegistrationError("disk_full", _("The server ran out of disk space while storing the upload; nothing "
                                               "was kept. Try again later.")) from None


def _create_archive(*, account, user, source, archive) -> tuple[Registration, bool]:
    if archive is None:
        raise RegistrationError("not_an_archive", _("Choose an archive file to upload."), field="archive")
    name = _archive_name(source, archive)
    if not name.lower().endswith(ARCHIVE_SUFFIXES):
        raise RegistrationError("not_an_archive", _("“%(name)s” is not a .zip, .tar, .tar.gz or .tgz archive.")
                                % {"name": name or "?"}, field="archive")
    cap = settings.CFM_UPLOAD_MAX_BYTES
    declared = getattr(archive, "size", None)
    if isinstance(declared, int) and declared > cap:
        raise RegistrationError("too_large", _("%(name)s is %(size)s bytes, over the upload limit of %(cap)s bytes.")
                                % {"name": name, "size": declared, "cap": cap}, field="archive")
    incoming = _incoming()
    try:
        stored = incoming / _safe_filename(name)
        _size, sha = _store(archive, stored, cap, name)
        if not looks_like_archive(stored):  # by content, as the inspection and Prepare read it
            raise RegistrationError("not_an_archive", _("“%(name)s” is not a valid archive of its kind.")
                                    % {"name": name}, field="archive")
        return _commit_upload(account=account, user=user, kind=SourceKind.ARCHIVE, source=name, sha=sha,
                              incoming=incoming, stored_name=stored.name)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _create_folder(*, account, user, source, files, sizes) -> tuple[Registration, bool]:
    name = (source or "").replace("\\", "/").strip("/").rsplit("/", 1)[-1][:300] or "folder"
    if not sizes:
        raise RegistrationError("empty_folder", _("The folder is empty."), field="folder")
    limits = inspect_limits()
    if len(sizes) > limits.archive_max_files:
        raise RegistrationError("too_large", _("The folder holds more than %(n)s files.")
                                % {"n": limits.archive_max_files}, field="folder")
    clean_sizes: dict[str, int] = {}
    for path, size in sizes.items():
        clean = _folder_path(path)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RegistrationError("invalid_folder", _("The size given for %(path)s is not a byte count.")
                                    % {"path": clean}, field="folder")
        if size > FOLDER_FILE_MAX_BYTES:
            raise RegistrationError("too_large", _("%(path)s is listed at %(size)s bytes; no model file is over "
                                                   "%(cap)s bytes.") % {"path": clean, "size": size,
                                                                        "cap": FOLDER_FILE_MAX_BYTES},
                                    field="folder")
        clean_sizes[clean] = size
    unknown = [p for p in files if _folder_path(p) not in clean_sizes]
    if unknown:
        raise RegistrationError("invalid_folder", _("%(path)s was sent but is not in the folder's file list.")
                                % {"path": unknown[0][:200]}, field="folder")
    cap = settings.CFM_UPLOAD_MAX_BYTES
    incoming = _incoming()
    try:
        digest, total = hashlib.sha256(), 0
        stored: dict[str, int] = {}
        for path in sorted(files, key=_folder_path):
            clean = _folder_path(path)
            try:
                n, sha = _store(files[path], incoming / "files" / clean, cap - total, clean)
            except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
                # "a" and "a/b" both sent as files: no folder holds that
                raise RegistrationError("invalid_folder", _("%(path)s is both a file and a folder.")
                                        % {"path": clean}, field="folder") from exc
            except OSError as exc:
                if exc.errno != errno.ENAMETOOLONG:
                    raise
                raise RegistrationError("invalid_folder", _("A file name in the folder is too long."),
                                        field="folder") from exc
            total += n
            stored[clean] = n
            digest.update(f"{clean}\x00{sha}\x00".encode())
        for path, size in clean_sizes.items():
            _check_snapshot(path, size, stored.get(path), incoming / "files" / path, limits)
        digest.update(json.dumps(sorted(clean_sizes.items())).encode())
        manifest = {"name": name, "sizes": clean_sizes, "stored": stored}
        (incoming / "manifest.json").write_text(json.dumps(manifest))
        return _commit_upload(account=account, user=user, kind=SourceKind.FOLDER, source=name,
                              sha=digest.hexdigest(), incoming=incoming, stored_name="manifest.json")
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _folder_path(path: str) -> str:
    try:
        clean = safe_member_name(str(path))
    except SourceError as exc:
        raise RegistrationError("invalid_folder", exc.message, field="folder") from None
    if not clean:
        raise RegistrationError("invalid_folder", _("A file in the folder has no name."), field="folder")
    return clean


def _check_snapshot(path: str, size: int, stored: int | None, file: Path, limits) -> None:
    """What the browser must send is what the engine would read from the
    folder itself: the small files whole, each safetensors header whole."""
    stored = stored or 0
    if stored > size:
        raise RegistrationError("invalid_folder", _("%(path)s: more bytes were sent than its size.")
                                % {"path": path}, field="folder")
    if path.endswith(".safetensors"):
        need = min(size, 8)
        if stored >= 8:
            with open(file, "rb") as fh:
                n = int.from_bytes(fh.read(8), "little")
            if n <= min(limits.max_header_bytes, size - 8):
                need = 8 + n
        if stored < need:
            raise RegistrationError("invalid_folder", _("%(path)s: its safetensors header was not sent whole.")
                                    % {"path": path}, field="folder")
    elif wants_whole(path) and size <= limits.max_small_file_bytes and stored != size:
        raise RegistrationError("invalid_folder", _("%(path)s was not sent whole.") % {"path": path}, field="folder")


def _commit_upload(*, account, user, kind, source, sha, incoming: Path, stored_name: str) -> tuple[Registration, bool]:
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account.pk)
        existing = _existing(account, source_kind=kind, content_sha256=sha)
        if existing is not None and Path(existing.upload_path).exists():
            return existing, False
        registration = Registration.objects.create(account=account, created_by=user, source_kind=kind,
                                                   source=source, content_sha256=sha)
        final = upload_dir(registration)
        shutil.rmtree(final, ignore_errors=True)  # a leftover of a rolled-back id
        final.parent.mkdir(parents=True, exist_ok=True)
        incoming.rename(final)
        registration.upload_path = str(final / stored_name)
        registration.save(update_fields=["upload_path"])
        _inspect(registration, user)
    return registration, True


# --- re-run, cancel, delete ----------------------------------------------------------------------------------

def _locked(registration: Registration, user) -> Registration:
    row = Registration.objects.select_for_update().select_related("account").filter(pk=registration.pk).first()
    if row is None or not Membership.objects.filter(account_id=row.account_id, user=user).exists():
        raise RegistrationError("not_found", _("No such registration."))
    return row


def registration_rerun(*, registration: Registration, user, token: str | None = None) -> Registration:
    """Inspects again (rules may have changed, a token may now be given). A
    job still running is left alone: re-running it is a no-op."""
    with transaction.atomic():
        row = _locked(registration, user)
        if token:
            # A new token replaces the stored one: the maker's or an owner's to change.
            require_may_change(user=user, account_id=row.account_id, created_by_id=row.created_by_id)
            if not _TOKEN.match(token.strip()):
                raise RegistrationError("invalid_token", _("The access token has characters a Hub token never has."),
                                        field="token")
            row.token_encrypted = token_encrypt(token.strip())
        if row.status in ACTIVE_STATUSES:
            if token:
                row.save(update_fields=["token_encrypted", "updated_at"])
            return row
        return _requeue(row, user)


def registration_requeue(*, registration: Registration) -> Registration:
    """Operators (admin): inspect again, whatever the account."""
    with transaction.atomic():
        row = Registration.objects.select_for_update().get(pk=registration.pk)
        if row.status in ACTIVE_STATUSES:
            return row
        return _requeue(row, None)


def _requeue(row: Registration, user) -> Registration:
    # The report is kept until a new one replaces it: a re-run that fails or is
    # cancelled must not lose it (the page shows it as the previous report; the
    # API serves reports only of registrations that are done, as the contract says).
    row.reused_from = None
    row.resolved_commit = ""
    row.save()
    _inspect(row, user)
    return row


def registration_cancel(*, registration: Registration, user) -> Registration:
    """Stops a queued or running job: it ends `failed` with code `cancelled`
    at once. A running worker reads the request at its next heartbeat and
    stops. A finished job is left as it is."""
    with transaction.atomic():
        row = _locked(registration, user)
        require_may_change(user=user, account_id=row.account_id, created_by_id=row.created_by_id)
        if row.status in ACTIVE_STATUSES and row.job_id:
            runtime.cancel(row.job_id, message=_("Cancelled by %(user)s.")
                           % {"user": getattr(user, "username", "") or "-"})
            row.refresh_from_db()
    return row


def registration_delete(*, registration: Registration, user) -> None:
    """Deletes the registration, its Hub token and every file cfm holds for
    it: its upload here, and (through `registration_deleted`, which the
    apps that keep files for it answer) Prepare's work folder and prepared
    folders. Refused (409 registration_in_use, with the list) while
    deployments of it are live: they may still need those files, and the
    user should decide about them first."""
    with transaction.atomic():
        row = _locked(registration, user)
        require_may_change(user=user, account_id=row.account_id, created_by_id=row.created_by_id)
        # The reverse relations of the apps above (quota, preparation): read, never imported.
        live = list(row.deployments.filter(status="active").order_by("id")
                    .values("id", "serving_name", "state"))
        if live:
            raise RegistrationError("registration_in_use", _(
                "This model has %(count)s live deployment(s): %(names)s. Delete them first; then the registration "
                "and its files can go.") % {"count": len(live), "names": ", ".join(d["serving_name"] for d in live)},
                deployments=[{"id": d["id"], "serving_name": d["serving_name"], "status": d["state"]}
                             for d in live])
        prepared = [{"backend": b, "location": loc} for b, loc in row.prepare_jobs.exclude(
            storage_location="").values_list("storage_backend", "storage_location")]
        deployment_ids = list(row.deployments.values_list("id", flat=True))
        folder, pk, account_id = upload_dir(row), row.pk, row.account_id
        row.delete()

        def release_files() -> None:
            shutil.rmtree(folder, ignore_errors=True)
            registration_deleted.send(sender=Registration, registration_id=pk, account_id=account_id,
                                      prepared=prepared, deployment_ids=deployment_ids)

        transaction.on_commit(release_files)


def registration_forget_token(*, registration: Registration, user) -> Registration:
    """Deletes the stored Hub token at the user's request."""
    with transaction.atomic():
        row = _locked(registration, user)
        require_may_change(user=user, account_id=row.account_id, created_by_id=row.created_by_id)
        if row.token_encrypted:
            row.token_encrypted = ""
            row.save(update_fields=["token_encrypted", "updated_at"])
    return row
