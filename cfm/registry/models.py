"""Model registrations: a source to inspect, its report, and a summary of
its latest inspection run (status, progress, error), which the job runtime
(cfm.jobs) keeps in step with the run's Job row."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cfm.accounts.models import Account
from cfm.catalog import CONFIGURATION_ORDER
from cfm.inspection.report import verdict_of


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


class Verdict(models.TextChoices):
    """The report's one word (report-contract: verdict); blank without a report."""
    READY = "ready", _("Ready")
    PREPARE = "prepare", _("Prepare first")
    UNCERTIFIED = "uncertified", _("Uncertified")
    REFUSED = "refused", _("Refused")


DEPLOYABLE_VERDICTS = (Verdict.READY, Verdict.PREPARE, Verdict.UNCERTIFIED)


def report_columns(report) -> dict:
    """The columns a list shows, read once from the report when it is stored
    (lists at 100,000 rows must not open the JSON of each)."""
    if not isinstance(report, dict):
        return {"verdict": "", "configuration": ""}
    conf = report.get("configuration")
    return {"verdict": verdict_of(report) or "",
            "configuration": conf if conf in CONFIGURATION_ORDER else ""}


class RegistrationQuerySet(models.QuerySet):
    def update(self, **kwargs):
        # Every write of a report writes its list columns too: one place, whatever the caller.
        if "report" in kwargs and (kwargs["report"] is None or isinstance(kwargs["report"], dict)):
            kwargs = {**report_columns(kwargs["report"]), **kwargs}
        return super().update(**kwargs)

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            for name, value in report_columns(obj.report).items():
                setattr(obj, name, value)
        return super().bulk_create(objs, *args, **kwargs)

    bulk_create.alters_data = True  # type: ignore[attr-defined]


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
    #: from the report, written with it (report_columns): what the lists show and count
    verdict = models.CharField(max_length=12, choices=Verdict.choices, blank=True, default="")
    configuration = models.CharField(max_length=12, blank=True, default="")

    #: the latest inspection run; `status` to `error_message` mirror it (written by cfm.jobs only), the
    #: report is its result; earlier runs stay as Job rows of kind "inspection" about this registration
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RegistrationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "source_kind", "source", "revision"]),
            # An account's list, newest first: the page is read from the index, whatever the row count.
            models.Index(fields=["account", "-created_at", "-id"], name="registry_reg_account_newest"),
            # The admin's list of every account's registrations, newest first.
            models.Index(fields=["-created_at", "-id"], name="registry_reg_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.source}@{self.revision}" if self.revision else self.source

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "report" in update_fields:
            for name, value in report_columns(self.report).items():
                setattr(self, name, value)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "verdict", "configuration"}
        super().save(*args, **kwargs)

    @property
    def attempts(self) -> int:
        """Attempts of the latest run (the API's `attempts`)."""
        return self.job.attempts if self.job_id and self.job else 0

    @property
    def deployable(self) -> bool:
        return self.verdict in DEPLOYABLE_VERDICTS


class RegistrationCounts(models.Model):
    """Per account: registrations in total, deployable ones (done, not
    refused) and running jobs. Kept by database triggers on the registration
    table (migration 0005), so that every insert, delete and change of status
    or verdict, whatever wrote it, moves the counts in the same transaction,
    and the dashboard reads three numbers instead of counting 100,000 rows.
    Never written by Python code."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, primary_key=True, related_name="+")
    total = models.IntegerField(default=0)
    deployable = models.IntegerField(default=0)
    active = models.IntegerField(default=0)

    class Meta:
        db_table = "registry_registrationcounts"

    def __str__(self) -> str:
        return f"{self.account_id}: {self.total}"
