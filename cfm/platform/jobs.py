"""Deployment tracking as a kind of job on the one runtime (cfm/jobs):
claim, lease, heartbeat, a poll that survives worker restarts, the sweeper
that reclaims a run whose worker died. The steps themselves are plain
functions (tracking.py)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from cfm.jobs.models import Job, JobStatus
from cfm.jobs.runtime import JobKind, Outcome, RunningJob, submit
from cfm.quota.models import TRACKED_STATES, Deployment, Origin

from . import tracking

KIND = "deployment"


class TrackDeployment(JobKind):
    name = KIND
    label = "deployment tracking"
    subject = Deployment

    def time_limits(self) -> tuple[int, int]:
        # One run may upload a whole model (gigabytes); polls are short and use no attempt.
        soft = max(settings.CFM_PLATFORM_DEPLOY_TIMEOUT, 6 * 3600)
        return soft, soft + 120

    def run(self, job: RunningJob) -> Outcome:
        dep = Deployment.objects.select_related("space", "registration", "account").get(pk=job.subject_id)

        def progress(done: int, total: int) -> None:
            job.progress("uploading", bytes_done=done, bytes_total=total)

        delay = tracking.step(dep, progress=progress)
        dep.refresh_from_db()
        if delay is not None:
            return Outcome.poll(delay, step=dep.state)
        return Outcome.done(step=dep.state)

    def summary(self, job: Job) -> dict[str, Any]:
        # Bytes while uploading: the page and the API read Deployment.progress.
        if job.progress_step == "uploading" and job.bytes_total:
            return {"progress": {"bytes_done": job.bytes_done, "bytes_total": job.bytes_total}}
        return {}

    def housekeeping(self, now: datetime) -> None:
        """A deployment whose tracking ended without finishing it (a worker
        lost too often, an internal error) fails and gives back its units;
        one whose delete could not reach the platform is tried again."""
        stale = now - timedelta(seconds=settings.CFM_JOB_LEASE_SECONDS)
        for dep in (Deployment.objects.filter(state__in=TRACKED_STATES, origin=Origin.CFM, status="active")
                    .select_related("job", "space", "registration", "account")[:200]):
            job = dep.job
            if job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING):
                continue
            if dep.state == "deleting" or job is None:
                if job is None or (job.finished_at and job.finished_at < stale):
                    submit(KIND, subject_id=dep.pk)
                continue
            if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                tracking.job_lost(dep, code=job.error_code, message=job.error_message)


def track(deployment: Deployment, *, owner=None) -> None:
    """Start tracking (inside the caller's transaction: sent on commit; the
    row waits in the outbox while the broker is down)."""
    submit(KIND, subject_id=deployment.pk, owner=owner)


def hurry(deployment: Deployment, *, owner=None) -> None:
    """A delete was asked: the running or queued run sees it at its next
    step (a queued poll is made due now); with no run, a new one."""
    from django.db import transaction

    from cfm.jobs.runtime import enqueue

    job = Job.objects.filter(pk=deployment.job_id).first() if deployment.job_id else None
    if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        track(deployment, owner=owner)
    elif job.status == JobStatus.QUEUED:
        Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(run_after=None)
        transaction.on_commit(lambda: enqueue(job.pk))
