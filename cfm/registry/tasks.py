"""Thin Celery tasks: an id in, JSON only; the job row is the truth
(cfm.registry.jobs). The task owns only its retry policy: a transient Hub
fault re-queues the job with backoff and jitter, bounded by
CFM_JOB_MAX_ATTEMPTS."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import jobs


@shared_task(name="cfm.registry.run_registration", ignore_result=True, acks_late=True,
             soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT, time_limit=settings.CELERY_TASK_TIME_LIMIT)
def run_registration(registration_id: int) -> str:
    outcome = jobs.run(registration_id=int(registration_id))
    if outcome.state == "retry":
        # If the broker is down now, the row waits in the outbox (not_before
        # set) and the sweeper queues it after the backoff.
        jobs.enqueue(registration_id=int(registration_id), countdown=outcome.retry_in)
    return outcome.state


@shared_task(name="cfm.registry.sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep() -> dict:
    result = jobs.sweep()
    return {"queued": result.queued, "reclaimed": result.reclaimed, "failed": result.failed}
