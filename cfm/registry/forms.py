"""The three ways into a registration from the browser: a Hub repo id, a
local folder (its small files and safetensors headers only, read in the
browser by static/js/folder-upload.js), or an archive upload.

Forms only validate input; registry.services.registration_create writes."""
from __future__ import annotations

from pathlib import PurePosixPath

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from cfm.inspection.hubids import is_repo_id, is_revision
from cfm.inspection.jsonsafe import JsonProblem, loads_bounded

from .limits import FOLDER_FILE_MAX_BYTES, inspect_limits

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")

def plan_refusal() -> str:
    return str(_("Only accounts on the Standard plan may register custom foundation models."))



class HubForm(forms.Form):
    source = forms.CharField(
        label=_("Hub repo id"), max_length=200,
        help_text=_("As on the Hub: organisation/name, e.g. ibm-granite/granite-3.0-8b-instruct."),
        widget=forms.TextInput(attrs={"placeholder": "org/name", "autocomplete": "off", "spellcheck": "false",
                                      "autocapitalize": "off"}))
    revision = forms.CharField(
        label=_("Revision"), max_length=200, required=False,
        help_text=_("A branch, tag or commit. Empty means the default branch."),
        widget=forms.TextInput(attrs={"placeholder": "main", "autocomplete": "off", "spellcheck": "false"}))
    token = forms.CharField(
        label=_("Access token"), max_length=500, required=False, strip=True,
        help_text=_("Only for gated or private repos. Kept encrypted for this registration's jobs and deleted "
                    "with it."),
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False))

    def clean_source(self) -> str:
        value = self.cleaned_data["source"].strip()
        if value.startswith("https://huggingface.co/"):
            value = value.removeprefix("https://huggingface.co/").strip("/")
        if not is_repo_id(value.removeprefix("hf://")):
            raise forms.ValidationError(
                _("“%(value)s” is not a Hub repo id: use organisation/name, e.g. "
                  "ibm-granite/granite-3.0-8b-instruct."), code="invalid_repo_id", params={"value": value[:200]})
        return value.removeprefix("hf://")

    def clean_revision(self) -> str:
        value = self.cleaned_data["revision"].strip()
        if value and not is_revision(value):
            raise forms.ValidationError(_("Enter a branch, tag or commit hash."), code="invalid_revision")
        return value


def _sniff_archive(upload: UploadedFile) -> bool:
    """True when the bytes look like a zip, a gzip stream or a tar."""
    upload.seek(0)
    head = upload.read(512)
    upload.seek(0)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return True
    if head[:2] == b"\x1f\x8b":
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


class ArchiveForm(forms.Form):
    archive = forms.FileField(
        label=_("Archive"),
        help_text=_("A .zip, .tar or .tar.gz of the model folder. Only the small files and the safetensors "
                    "headers are read."),
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,.tar,.tar.gz,.tgz,application/zip,application/x-tar,"
                                                         "application/gzip"}))

    def clean_archive(self) -> UploadedFile:
        upload = self.cleaned_data["archive"]
        if upload.size > settings.CFM_UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                _("The archive is %(size)s; uploads are limited to %(cap)s. Register the folder instead: only its "
                  "headers are sent."),
                code="too_large", params={"size": _mb(upload.size), "cap": _mb(settings.CFM_UPLOAD_MAX_BYTES)})
        if not upload.name.lower().endswith(ARCHIVE_SUFFIXES) or not _sniff_archive(upload):
            raise forms.ValidationError(_("%(name)s is not a .zip, .tar or .tar.gz archive."), code="not_an_archive",
                                        params={"name": upload.name[:120]})
        return upload


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n < 1e9 else f"{n / 1e9:,.2f} GB"


def _safe_path(raw) -> str | None:
    if not isinstance(raw, str) or not raw or len(raw) > 500 or "\x00" in raw or "\\" in raw:
        return None
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        return None
    parts = raw.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return raw


class FolderForm(forms.Form):
    """What folder-upload.js posts: `folder` (the folder's name), `manifest`
    (JSON: [{"path", "size", "part"}], `part` naming the uploaded file field
    for small files and safetensors header snapshots, null for the rest),
    and the parts themselves. Nothing else of the folder is sent."""

    folder = forms.CharField(label=_("Model folder"), max_length=200)
    manifest = forms.CharField(widget=forms.HiddenInput, max_length=20_000_000)

    def __init__(self, data=None, files=None, **kwargs):
        super().__init__(data, files, **kwargs)
        self.parts = files or {}
        self.folder_sizes: dict[str, int] = {}
        self.folder_files: dict[str, UploadedFile] = {}

    def clean_folder(self) -> str:
        name = self.cleaned_data["folder"].strip().strip("/")
        name = PurePosixPath(name).name if name else ""
        if not name:
            raise forms.ValidationError(_("Choose a model folder."), code="required")
        return name

    def clean_manifest(self) -> list:
        raw = self.cleaned_data["manifest"].encode()
        try:
            # [{"path", "size", "part"}]: two levels; deeper input used to reach the parser's recursion limit.
            entries = loads_bounded(raw, max_bytes=len(raw), max_depth=2)
        except JsonProblem:
            raise forms.ValidationError(_("The folder's file list could not be read."), code="invalid") from None
        if not isinstance(entries, list):
            raise forms.ValidationError(_("The folder's file list could not be read."), code="invalid")
        if not entries:
            raise forms.ValidationError(_("The folder is empty: choose the folder that holds config.json and the "
                                          "weights."), code="empty_folder")
        limits = inspect_limits()
        if len(entries) > limits.archive_max_files:
            raise forms.ValidationError(_("The folder has more than %(cap)s files."), code="too_large",
                                        params={"cap": limits.archive_max_files})
        return entries

    def clean(self):
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data
        entries = data.get("manifest")
        if entries is None:
            return data
        sizes: dict[str, int] = {}
        files: dict[str, UploadedFile] = {}
        uploaded = 0
        bad = _("The folder's file list could not be read.")
        for entry in entries:
            if not isinstance(entry, dict):
                raise forms.ValidationError(bad, code="invalid")
            path, size, part = _safe_path(entry.get("path")), entry.get("size"), entry.get("part")
            if path is None or not isinstance(size, int) or isinstance(size, bool) or size < 0 or path in sizes:
                raise forms.ValidationError(bad, code="invalid")
            if size > FOLDER_FILE_MAX_BYTES:
                raise forms.ValidationError(_("%(path)s is listed at %(size)s bytes; no model file is over %(cap)s."),
                                            code="too_large",
                                            params={"path": path, "size": size, "cap": _mb(FOLDER_FILE_MAX_BYTES)})
            sizes[path] = size
            if part is None:
                continue
            upload = self.parts.get(str(part))
            if upload is None or upload.size > size:
                raise forms.ValidationError(bad, code="invalid")
            uploaded += upload.size
            if uploaded > settings.CFM_UPLOAD_MAX_BYTES:
                raise forms.ValidationError(_("The files to upload exceed %(cap)s."), code="too_large",
                                            params={"cap": _mb(settings.CFM_UPLOAD_MAX_BYTES)})
            files[path] = upload
        # registry.services checks each part again against what the engine
        # would read from the folder itself (headers whole, small files whole).
        self.folder_sizes, self.folder_files = sizes, files
        return data
