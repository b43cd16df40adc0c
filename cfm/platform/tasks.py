"""The periodic sync (celery beat). Deployment tracking itself runs on the
job runtime (cfm/platform/jobs.py)."""
from __future__ import annotations

from celery import shared_task
from django.db import close_old_connections

from . import sync


@shared_task(name="cfm.platform.sync", ignore_result=True, soft_time_limit=600, time_limit=660)
def platform_sync() -> dict:
    close_old_connections()
    result = sync.platform_sync()
    return {"spaces": result.spaces, "gone": result.gone, "found": result.found, "changed": result.changed}
