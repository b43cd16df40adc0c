"""The Prepare job: one preparation of a registration (the steps asked for,
the rope_scaling review, the result, where it is stored), with a summary of
the job runtime's run that does it (status, stage, per-file progress)."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cfm.accounts.models import Account
from cfm.registry.models import Registration


class PrepareStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    #: paused: the rope_scaling edit waits for the user's answer
    REVIEW = "review", _("Waiting for your review")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE = (PrepareStatus.QUEUED, PrepareStatus.RUNNING)


class PrepareJob(models.Model):
    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="prepare_jobs")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="prepare_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   related_name="+")
    status = models.CharField(max_length=12, choices=PrepareStatus.choices, default=PrepareStatus.QUEUED,
                              db_index=True)
    #: the steps asked for (the report's `preparation` when the job started)
    steps = models.JSONField(default=list)
    cast_to_16bit = models.BooleanField(default=False)
    #: the user's answer to the rope_scaling diff: None until asked
    rope_accept = models.BooleanField(null=True, blank=True)
    rope_diff = models.TextField(blank=True, default="")

    #: a pipeline.STAGES key
    stage = models.CharField(max_length=40, blank=True, default="")
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    #: {"files": {name: {"done", "total"}}, "rate": bytes/s, "eta": seconds}
    progress = models.JSONField(default=dict, blank=True)

    error_code = models.CharField(max_length=40, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    old_report = models.JSONField(null=True, blank=True)
    new_report = models.JSONField(null=True, blank=True)
    #: what each step did (files written, tensors verified, peak memory ...)
    summary = models.JSONField(default=dict, blank=True)
    storage_backend = models.CharField(max_length=10, blank=True, default="")
    storage_location = models.CharField(max_length=500, blank=True, default="")
    #: {file: {"sha256", "size"}}
    manifest = models.JSONField(default=dict, blank=True)

    #: the run of the job runtime (cfm.jobs) doing this preparation: `status`, `stage`, the progress, the
    #: error and the times above mirror it (written by cfm.jobs only). The rope_scaling review pauses the
    #: run (Job status `waiting`, here `review`), the answer resumes the same run.
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"prepare #{self.pk} of {self.registration_id} ({self.status})"

    @property
    def number(self) -> int:
        """1 for the registration's first preparation, 2 for the next...: the
        row's id counts every account's jobs, which says nothing to the reader."""
        return PrepareJob.objects.filter(registration_id=self.registration_id, pk__lte=self.pk).count()

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE
