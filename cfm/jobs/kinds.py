"""What a kind of job declares, and the registry of kinds: the small
interface a feature implements (cfm/jobs/__init__.py shows a whole kind).
The runtime (runtime.py) and the sweeper (sweeper.py) do the rest."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from django.conf import settings
from django.db import models
from django.db.models.signals import post_delete

from .models import Job

if TYPE_CHECKING:
    from .runtime import RunningJob

#: Error codes worth another attempt: the same input may well succeed later
#: (the Hub or the network was down or slow). A 404, a malformed header, a
#: refused pickle are answers, not reasons to retry (style.md).
TRANSIENT_CODES = frozenset({"hub_unavailable", "timeout"})


class JobError(Exception):
    """An expected failure of a job: a stable `code` (kept on the row, mapped
    to words by the pages) and a `message` users may read."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class JobStopped(Exception):
    """The run must stop: cancelled, or its claim is gone (reclaimed or deleted)."""


@dataclass(frozen=True)
class Outcome:
    """What a kind's `run` returns when it did not raise.

    `done()`: finished. `poll(seconds)`: not finished, run again after that
    long, without using an attempt (the row is queued with `run_after` and
    the sweeper sends it when due, so it survives worker restarts and a
    broker that is down). `wait()`: paused
    until `resume` (an answer the user must give). `subject` fields are
    written on the subject row together with the job's new state, fenced by
    the claim."""

    state: Literal["done", "poll", "wait"]
    subject: dict[str, Any] = field(default_factory=dict)
    step: str = ""
    seconds: float = 0.0

    @classmethod
    def done(cls, step: str = "done", **subject: Any) -> Outcome:
        return cls("done", subject, step)

    @classmethod
    def poll(cls, seconds: float, step: str = "waiting", **subject: Any) -> Outcome:
        return cls("poll", subject, step, max(0.0, float(seconds)))

    @classmethod
    def wait(cls, step: str = "waiting", **subject: Any) -> Outcome:
        return cls("wait", subject, step)


class JobKind:
    """A kind of job. Subclass it, set the class attributes, implement `run`
    (and `summary` when the subject row mirrors the job), and `register()` an
    instance from the app's `ready()`."""

    #: stored in Job.kind
    name: ClassVar[str]
    #: in messages: "The <label> took longer than …"
    label: ClassVar[str]
    #: the row a job is about; it has `job = ForeignKey("jobs.Job", null=True, on_delete=SET_NULL)`, the latest run
    subject: ClassVar[type[models.Model]]
    #: the Celery queue its messages travel on (settings.CELERY_TASK_QUEUES); None is the
    #: app's default queue (task_default_queue, read on every send), where inspections go
    queue: ClassVar[str | None] = None

    def time_limits(self) -> tuple[int, int]:
        """Celery's soft and hard time limits of one run, in seconds."""
        return settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT

    def run(self, job: RunningJob) -> Outcome:
        raise NotImplementedError

    def summary(self, job: Job) -> dict[str, Any]:
        """The subject's fields that mirror the job (status in the subject's
        own words, progress, error); written by the runtime only."""
        return {}

    def housekeeping(self, now: datetime) -> None:
        """Called by each sweep: clean-ups of the kind's own (stale uploads ...)."""


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    _KINDS[kind.name] = kind
    # The runs of a deleted subject go with it (cascades included).
    post_delete.connect(_forget_runs, sender=kind.subject, dispatch_uid=f"cfm.jobs.forget.{kind.name}", weak=False)
    return kind


def kind_of(name: str) -> JobKind:
    return _KINDS[name]


def _forget_runs(sender, instance, **kwargs) -> None:
    names = [k.name for k in _KINDS.values() if k.subject is sender]
    Job.objects.filter(kind__in=names, subject_id=instance.pk).delete()
