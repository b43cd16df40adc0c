"""Thin Celery tasks: a job id in, JSON only; the PrepareJob row is the truth."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import jobs

# Download + conversion + tokenizer each have CFM_PREPARE_TIME_LIMIT; the
# task as a whole gets a few of them. A killed task leaves its lease to expire
# and the sweeper re-queues it (the work folder lets it resume).
_SOFT = settings.CFM_PREPARE_TIME_LIMIT * 4


@shared_task(name="cfm.preparation.prepare_run", ignore_result=True, acks_late=True,
             soft_time_limit=_SOFT, time_limit=_SOFT + 120)
def prepare_run(job_id: int) -> str:
    return jobs.run(job_id=int(job_id))


@shared_task(name="cfm.preparation.sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep() -> dict:
    return jobs.sweep()
