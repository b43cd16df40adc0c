"""The one background-job runtime: inspections, Prepare and deployment
tracking are kinds of job run by the same claim/lease/heartbeat/retry/sweep
code (kinds.py: what a kind declares; runtime.py: submit, claim, heartbeat,
retry, cancel; sweeper.py: lost workers, the outbox) and recorded in the same
row (models.Job, one per run).

Adding a kind (say, `deployment` tracking):

1. The subject: the row the job is about (a Deployment) gets
   `job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")`,
   its latest run, and whatever summary fields its pages read.
2. The kind, in the feature's app (e.g. `cfm/platform/jobs.py`)::

       from cfm.jobs.runtime import JobError, JobKind, Outcome, RunningJob

       class TrackDeployment(JobKind):
           name = "deployment"            # stored in Job.kind
           label = "deployment tracking"  # in messages: "The deployment tracking took longer than …"
           subject = Deployment
           queue = "celery"               # or a queue of its own (settings.CELERY_TASK_QUEUES)

           def run(self, job: RunningJob) -> Outcome:
               dep = Deployment.objects.get(pk=job.subject_id)
               job.progress("polling", done=1, total=3)      # buffered; the heartbeat writes it
               state = platform.get_deployment(dep)            # raise JobError(code, message) to fail;
               if state == "initializing":                     # a code in TRANSIENT_CODES is retried
                   return Outcome.poll(30)                     # run again in 30 s, no attempt used
               return Outcome.done(platform_state=state)       # fields written on the subject at the end

           def summary(self, job) -> dict:                     # optional: the subject's mirror of the job
               return {"tracking_status": job.status, "tracking_error": job.error_message}

3. Register it once, from the app's `AppConfig.ready()`:
   `cfm.jobs.runtime.register(TrackDeployment())`.
4. Start a run from a service: `runtime.submit("deployment", subject_id=dep.pk, owner=user)`
   (inside the service's transaction: the message is sent on commit, and the
   row waits in the outbox while the broker is down). Cancel with
   `runtime.cancel(job_id, message=...)`.

What the kind gets for free: a second delivery of the message is skipped
(the claim); a worker killed mid-run is found by its expired lease and the
job re-queued, at most CFM_JOB_MAX_ATTEMPTS times; `Outcome.poll` survives
worker restarts (the row is queued with `run_after`, the sweeper sends it
when due); Celery's soft time limit, an unexpected exception and a lost
worker each end the run with a code (`time_limit`, `internal`,
`worker_lost`) and a message fit for users; a run that should stop (cancelled,
or reclaimed) raises JobStopped from `job.progress()`/`job.check()`, and a
long loop can poll `job.should_stop()`. The runtime imports no feature app.
"""
