"""Model registrations: a source to inspect, its report, and a summary of
its latest inspection run (status, progress, error), which the job runtime
(cfm.jobs) keeps in step with the run's Job row."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cfm.accounts.models import Account


class SourceKind(models.TextChoices):
    HUB = "hub", _("Hub repository")
    FOLDER = "folder", _("Local folder")
    ARCHIVE = "archive", _("Archive upload")


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    FETCHING = "fetching", _("Fetching")
    INSPECTING = "inspecting", _("Inspecting")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


ACTIVE_STATUSES = (Status.QUEUED, Status.FETCHING, Status.INSPECTING)


class Registration(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="registrations")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   related_name="registrations")
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices)
    #: "org/name" for the Hub; the folder or archive name for uploads
    source = models.CharField(max_length=300)
    revision = models.CharField(max_length=200, blank=True, default="")
    resolved_commit = models.CharField(max_length=64, blank=True, default="")
    #: where an upload (archive, or small files + headers of a folder) is stored
    upload_path = models.CharField(max_length=500, blank=True, default="")
    #: the Hub token, encrypted at rest (cfm.registry.secrets); empty when none
    token_encrypted = models.TextField(blank=True, default="")
    #: uploads: SHA-256 of the archive (or of the folder snapshot), so the
    #: same upload twice is a duplicate like the same repo twice
    content_sha256 = models.CharField(max_length=64, blank=True, default="", db_index=True)
    #: the registration whose report was reused (same account, same commit)
    reused_from = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress_step = models.CharField(max_length=40, blank=True, default="")
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    error_code = models.CharField(max_length=40, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    report = models.JSONField(null=True, blank=True)

    #: the latest inspection run; `status` to `error_message` mirror it (written by cfm.jobs only), the
    #: report is its result; earlier runs stay as Job rows of kind "inspection" about this registration
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "source_kind", "source", "revision"])]

    def __str__(self) -> str:
        return f"{self.source}@{self.revision}" if self.revision else self.source

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def attempts(self) -> int:
        """Attempts of the latest run (the API's `attempts`)."""
        return self.job.attempts if self.job_id and self.job else 0

    @property
    def deployable(self) -> bool:
        return bool(self.report and self.report.get("deployable"))
