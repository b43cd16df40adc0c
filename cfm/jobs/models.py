"""The job row: the truth about one run of background work, whatever its
kind (an inspection, a Prepare run, a deployment's tracking).

Shaped like NetBox's `core.Job` and paperless-ngx's task rows (status as
TextChoices, owner, times, progress, error), plus what a lost worker or a
lost broker needs: the claim that fences every write of the worker that owns
the run, a lease its heartbeat renews, bounded attempts, `run_after` for a
delayed retry or the next poll, and `enqueued_at` (null: the message never
reached the broker; the row is its own outbox).

One row per run: running a registration's inspection again adds a row and
keeps the earlier ones. The subject (the registration, the Prepare run, ...)
points at its latest run and holds a summary of it that only the runtime
writes (cfm.jobs.runtime)."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    #: paused until someone answers (Prepare's rope_scaling review); never claimed nor swept
    WAITING = "waiting", _("Waiting for an answer")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
ENDED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    #: a registered kind's name (cfm.jobs.runtime.JobKind.name)
    kind = models.CharField(max_length=40)
    #: the primary key of the kind's subject row
    subject_id = models.PositiveBigIntegerField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)

    # progress, one shape for every kind: a step key (rendered into words by the pages), done/total of that
    # step, bytes; `progress_detail` holds what a kind shows beyond that (Prepare: per-file progress, rate)
    progress_step = models.CharField(max_length=40, blank=True, default="")
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    progress_detail = models.JSONField(default=dict, blank=True)

    error_code = models.CharField(max_length=40, blank=True, default="")
    error_message = models.TextField(blank=True, default="")

    #: claims so far; a poll or a pause gives its attempt back
    attempts = models.PositiveIntegerField(default=0)
    #: the current claim (random, per claim): every write of the worker is `… WHERE claim=?`
    claim = models.CharField(max_length=32, blank=True, default="")
    #: "hostname:pid" of the process running the job (operators, kill tests)
    worker = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    #: not to be run before (a retry's backoff, the next poll): the sweeper sends it only then
    run_after = models.DateTimeField(null=True, blank=True)
    #: when the message reached the broker; null: in the outbox
    enqueued_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["kind", "subject_id"]),
            models.Index(fields=["status", "lease_expires_at"]),
            models.Index(fields=["status", "enqueued_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE
