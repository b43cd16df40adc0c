"""GET /healthz: the state of the database and the broker, for load
balancers and operators. 200 while the database answers (registrations are
accepted even with the broker down: they wait in the outbox); 503 when the
database does not."""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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


@never_cache
@require_GET
def healthz(request):
    database = _database()
    broker = _broker()
    status = "ok" if database["ok"] and broker["ok"] else ("degraded" if database["ok"] else "down")
    return JsonResponse({"status": status, "database": database, "broker": broker},
                        status=200 if database["ok"] else 503)
