"""Thin Celery tasks: an id in, JSON only; the Deployment row is the truth."""
from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from cfm.quota.models import TRACKED_STATES, Deployment, Origin

from . import sync, tracking


@shared_task(name="cfm.platform.deployment_track", ignore_result=True, acks_late=True,
             soft_time_limit=6 * 3600, time_limit=6 * 3600 + 120)
def deployment_track(deployment_id: int) -> None:
    """One step; the next one is queued with the wait the step asked for."""
    from .services import enqueue

    close_old_connections()
    delay = tracking.advance(int(deployment_id))
    if delay is not None:
        enqueue(deployment_id=int(deployment_id), countdown=delay)


@shared_task(name="cfm.platform.sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep() -> dict:
    close_old_connections()
    return sweep_deployments()


def sweep_deployments() -> dict:
    """Deployments whose tracking stalled: the broker never got the message
    (`enqueued_at` empty), the worker died (lease ran out), or a planned look
    is long overdue (the delayed message was lost with its worker)."""
    from .services import enqueue

    now = timezone.now()
    grace = timedelta(seconds=settings.CFM_JOB_LEASE_SECONDS)
    queued = 0
    stalled = (Deployment.objects.filter(state__in=TRACKED_STATES, origin=Origin.CFM)
               .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
               .filter(Q(enqueued_at__isnull=True) | Q(next_check_at__lt=now - grace)
                       | Q(next_check_at__isnull=True, enqueued_at__lt=now - grace)))
    for pk in stalled.values_list("pk", flat=True)[:200]:
        if not enqueue(deployment_id=pk):
            break
        queued += 1
    return {"queued": queued}


@shared_task(name="cfm.platform.sync", ignore_result=True, soft_time_limit=600, time_limit=660)
def platform_sync() -> dict:
    close_old_connections()
    result = sync.platform_sync()
    return {"spaces": result.spaces, "gone": result.gone, "found": result.found, "changed": result.changed}
