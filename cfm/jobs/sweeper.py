"""The sweeper (celery beat, every CFM_SWEEP_INTERVAL s): reclaims runs whose
worker died (lease expired), sends what the broker never got (the outbox) or
lost once it is due, and calls each kind's housekeeping."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .kinds import _KINDS
from .models import Job, JobStatus
from .runtime import enqueue, lease, mirror

log = logging.getLogger(__name__)


def stale_before(now: datetime) -> datetime:
    """A queued job whose message reached the broker (or fell due) before this
    is taken for lost (a broker restarted without persistence) and sent again:
    far longer than a lease, so a busy queue is not flooded with duplicates
    (a duplicate is harmless anyway: the claim lets one run)."""
    return now - max(lease() * 5, timedelta(minutes=10))



@dataclass
class SweepResult:
    queued: int = 0
    reclaimed: int = 0
    failed: int = 0


def sweep() -> SweepResult:
    """Reclaims jobs whose worker died (lease expired), sends what the broker
    never got (the outbox) or lost, once due; then each kind's housekeeping."""
    now = timezone.now()
    result = SweepResult()
    expired = (Job.objects.filter(status=JobStatus.RUNNING, lease_expires_at__lt=now)
               .values_list("pk", "kind", "attempts", "claim")[:500])
    for pk, kind_name, attempts, claim in expired:
        kind = _KINDS.get(kind_name)
        label = kind.label if kind else kind_name
        with transaction.atomic():
            theirs = Job.objects.filter(pk=pk, claim=claim, status=JobStatus.RUNNING)
            if attempts >= settings.CFM_JOB_MAX_ATTEMPTS:
                n = theirs.update(
                    status=JobStatus.FAILED, claim="", lease_expires_at=None, finished_at=now, updated_at=now,
                    error_code="worker_lost",
                    error_message=f"The {label} was interrupted {attempts} times (its worker stopped or ran out "
                                  "of time); it was not tried again.")
                result.failed += n
            else:
                n = theirs.update(status=JobStatus.QUEUED, claim="", lease_expires_at=None, enqueued_at=None,
                                  updated_at=now, progress_step="requeued")
                result.reclaimed += n
                if n:
                    log.warning("%s job %s: lease expired (worker lost); re-queued", kind_name, pk)
            if n:
                mirror(pk)

    stale = stale_before(now)
    due = (Job.objects.filter(status=JobStatus.QUEUED)
           .filter(Q(run_after__isnull=True) | Q(run_after__lte=now))
           .filter(Q(enqueued_at__isnull=True)
                   # sent, still queued long after it fell due: the message was lost
                   | (Q(enqueued_at__lt=stale) & (Q(run_after__isnull=True) | Q(run_after__lt=stale))))
           .order_by("created_at").values_list("pk", flat=True)[:500])
    for pk in due:
        if not enqueue(pk):
            break  # the broker is still down: try again at the next sweep
        result.queued += 1
    for kind in list(_KINDS.values()):
        kind.housekeeping(now)
    return result


def outbox_count() -> int:
    """Jobs waiting for the broker (or the sweeper)."""
    return Job.objects.filter(status=JobStatus.QUEUED, enqueued_at__isnull=True).count()
