"""GET /healthz: the state of the database, the broker and the workers, for
load balancers and operators. 200 while the database answers (registrations
are accepted even with the broker down: they wait in the outbox); 503 when
the database does not. `degraded` when the broker is down, or when work is
queued and no worker that takes it has written a heartbeat for a minute
(cfm.workers.heartbeat): then nothing would ever run it."""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cfm.workers.heartbeat import workers_live

log = logging.getLogger(__name__)


def _database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("healthz: database unavailable: %s", exc)
        return {"ok": False, "vendor": connection.vendor, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.monotonic() - started) * 1000, 1)}


def _broker() -> dict:
    from cfm.celery import app
    from cfm.jobs.runtime import broker_errors
    from cfm.jobs.sweeper import outbox_count

    kind = "redis" if settings.REDIS_URL else "filesystem"
    started = time.monotonic()
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=1)
        ok, error = True, None
    except broker_errors() as exc:
        ok, error = False, type(exc).__name__
    state = {"ok": ok, "kind": kind, "ms": round((time.monotonic() - started) * 1000, 1)}
    if error:
        state["error"] = error
    try:
        # Jobs (inspections, Prepare runs ...) waiting in the outbox for the broker (or the sweeper).
        state["outbox"] = outbox_count()
    except DatabaseError:
        pass
    return state


def queued_work() -> dict[str, dict]:
    """Per Celery queue: how many jobs are due and wait for a worker, and
    the age (s) of the oldest, from the job runtime's rows (read only)."""
    from celery import current_app
    from django.db.models import Count, Min, Q

    from cfm.jobs.models import Job, JobStatus
    from cfm.jobs.runtime import kind_of

    now = timezone.now()
    out: dict[str, dict] = {queue.name: {"queued": 0, "oldest_age_s": None} for queue in settings.CELERY_TASK_QUEUES}
    # Due (no retry or poll delay ahead). A queued row is not written again until a worker claims it: updated_at
    # is when it was queued (submitted, retried, resumed).
    due = Job.objects.filter(Q(run_after__isnull=True) | Q(run_after__lte=now), status=JobStatus.QUEUED)
    for row in due.values("kind").annotate(n=Count("id"), oldest=Min("updated_at")):
        try:
            # None: the app's default queue (task_default_queue), as the runtime sends it.
            queue = kind_of(row["kind"]).queue or current_app.conf.task_default_queue
        except KeyError:  # a kind no longer registered: the sweeper's concern, not a worker's
            continue
        entry = out.setdefault(queue, {"queued": 0, "oldest_age_s": None})
        entry["queued"] += row["n"]
        age = round((now - row["oldest"]).total_seconds(), 1)
        entry["oldest_age_s"] = max(age, entry["oldest_age_s"] or 0)
    return out


def _workers() -> dict:
    try:
        queues = queued_work()
        live = workers_live()
    except DatabaseError:
        return {"ok": False, "error": "database"}
    stalled = []
    if not settings.CFM_EAGER_CELERY:  # eager: the web process runs the tasks itself
        for queue, work in queues.items():
            if work["queued"] and not any(not w.queues or queue in w.queues for w in live):
                stalled.append(queue)
    return {"ok": not stalled, "live": [{"name": w.name, "queues": w.queues, "age_s": w.age} for w in live],
            "queues": queues, "stalled": stalled}


@never_cache
@require_GET
def healthz(request):
    database = _database()
    broker = _broker()
    workers = _workers() if database["ok"] else {"ok": False, "error": "database"}
    status = ("ok" if broker["ok"] and workers["ok"] else "degraded") if database["ok"] else "down"
    return JsonResponse({"status": status, "database": database, "broker": broker, "workers": workers},
                        status=200 if database["ok"] else 503)
