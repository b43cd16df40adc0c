"""Worker heartbeats: each Celery worker writes its row every
CFM_HEARTBEAT_INTERVAL seconds (cfm.workers.heartbeat), so `/healthz` and the
pages know whether anyone will ever take the queued work. Independent of
the job runtime: it knows workers, not jobs."""
from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    #: Celery's node name, e.g. "celery@host" (unique per running worker)
    name = models.CharField(max_length=200, unique=True)
    #: the queues it consumes, comma-separated ("" when unknown: counts for every queue)
    queues = models.CharField(max_length=500, blank=True, default="")
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
