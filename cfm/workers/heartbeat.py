"""Worker heartbeats (cfm.workers.models.WorkerHeartbeat): the service a worker
calls, the thread that calls it, and the selectors `/healthz` and the pages
read. A worker is live while its row was written within LIVE_SECONDS; a
worker that stops cleanly removes its row, one that dies stops writing it."""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from .models import WorkerHeartbeat

log = logging.getLogger(__name__)


def live_seconds() -> int:
    """How long a heartbeat counts: a minute, or three beats if they are rarer."""
    return max(60, 3 * settings.CFM_HEARTBEAT_INTERVAL)


# --- services -----------------------------------------------------------------------------------------------

def heartbeat_write(*, name: str, queues: list[str], pid: int) -> None:
    now = timezone.now()
    updated = WorkerHeartbeat.objects.filter(name=name).update(seen_at=now, queues=",".join(queues)[:500], pid=pid)
    if not updated:
        WorkerHeartbeat.objects.update_or_create(
            name=name, defaults={"queues": ",".join(queues)[:500], "pid": pid, "started_at": now, "seen_at": now})


def heartbeat_forget(*, name: str) -> None:
    WorkerHeartbeat.objects.filter(name=name).delete()


# --- selectors ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerState:
    name: str
    queues: list[str]
    age: float  # seconds since its last heartbeat


def workers_live(*, queue: str | None = None) -> list[WorkerState]:
    """Workers that wrote a heartbeat within live_seconds(), optionally only
    those that consume `queue`."""
    now = timezone.now()
    rows = WorkerHeartbeat.objects.filter(seen_at__gte=now - timedelta(seconds=live_seconds()))
    out = []
    for row in rows:
        queues = [q for q in row.queues.split(",") if q]
        if queue is None or not queues or queue in queues:
            out.append(WorkerState(row.name, queues, round((now - row.seen_at).total_seconds(), 1)))
    return out


# --- the thread in each worker -----------------------------------------------------------------------------------

class HeartbeatThread(threading.Thread):
    """Started in the worker's main process when it is ready; writes the row
    every CFM_HEARTBEAT_INTERVAL seconds until the worker shuts down. A
    database fault skips one beat: it is logged, never fatal to the worker."""

    def __init__(self, *, name: str, queues: list[str]):
        super().__init__(name="cfm-heartbeat", daemon=True)
        self.worker_name, self.queues = name, queues
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.beat()
            self.stopping.wait(settings.CFM_HEARTBEAT_INTERVAL)

    def beat(self) -> None:
        try:
            close_old_connections()
            heartbeat_write(name=self.worker_name, queues=self.queues, pid=os.getpid())
        except DatabaseError as exc:
            log.warning("heartbeat of %s not written: %s", self.worker_name, exc)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        try:
            heartbeat_forget(name=self.worker_name)
        except DatabaseError as exc:
            log.warning("heartbeat of %s not removed: %s", self.worker_name, exc)
        finally:
            connection.close()


_thread: HeartbeatThread | None = None


def on_worker_ready(sender=None, **kwargs) -> None:
    global _thread
    try:
        queues = sorted(q.name for q in sender.task_consumer.queues)
    except AttributeError:
        queues = []
    _thread = HeartbeatThread(name=getattr(sender, "hostname", None) or f"worker@{os.getpid()}", queues=queues)
    _thread.start()


def on_worker_shutdown(sender=None, **kwargs) -> None:
    if _thread is not None:
        _thread.stop()
