"""Runs a subject's latest job in this process (the worker tests run it in a
real worker), as the Celery task would."""
from __future__ import annotations

from cfm.jobs import runtime


def latest_job_id(subject) -> int:
    return type(subject).objects.filter(pk=subject.pk).values_list("job", flat=True).get()


def run_latest(subject) -> str:
    """The run's state: skipped, done, failed, retry, poll, waiting, cancelled or lost."""
    return runtime.run(job_id=latest_job_id(subject))


def run_prepare(prepare_job_id: int) -> str:
    """A Prepare job's status after its run (done, review, failed, cancelled), or skipped."""
    from cfm.preparation.models import PrepareJob

    prep = PrepareJob.objects.get(pk=prepare_job_id)
    if runtime.run(job_id=latest_job_id(prep)) == "skipped":
        return "skipped"
    return PrepareJob.objects.get(pk=prepare_job_id).status
