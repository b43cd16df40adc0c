"""The two Celery tasks of every job: a job id in, JSON only; the Job row is
the truth. A run's queue and time limits come with its message (its kind's),
so one task serves every kind."""
from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from . import runtime, sweeper


@shared_task(name="cfm.jobs.run", ignore_result=True, acks_late=True)
def run_job(job_id: int) -> str:
    return runtime.run(job_id=int(job_id))


@shared_task(name="cfm.jobs.sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep() -> dict:
    return asdict(sweeper.sweep())
