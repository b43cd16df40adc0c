# ruff: noqa: F811  (pytest fixtures imported from worker_support are redefined as arguments)
"""Registrations are never refused because the broker is down: the request
answers 201 within 2 s, the row waits in the outbox, and the sweeper queues
it once the broker is back (the contract: within 60 s; here the test
worker sweeps every second)."""
from __future__ import annotations

import json
import time

import pytest
from modelfactory import make_tiny_real
from worker_support import alice, broker_at, wait_for, wait_status, worker  # noqa: F401

from cfm.registry.models import Registration, Status

pytestmark = pytest.mark.services
CLOSED_PORT = "redis://127.0.0.1:1/3"  # nothing listens on port 1


def test_a_registration_made_while_redis_is_down_is_saved_and_swept_later(worker, client, alice, tmp_path):
    worker.hub.add_repo("org/while-down", make_tiny_real(tmp_path / "m"))
    with broker_at(CLOSED_PORT):
        started = time.monotonic()
        r = client.post("/api/v1/registrations", data=json.dumps({"account": alice.account.pk,
                                                                   "source": "org/while-down"}),
                        content_type="application/json", **alice.auth)
        elapsed = time.monotonic() - started
        assert r.status_code == 201, r.content
        assert elapsed < 2.0, f"answered in {elapsed:.2f} s"
        row = Registration.objects.get(pk=r.json()["id"])
        assert (row.status, row.job.enqueued_at) == (Status.QUEUED, None)  # in the outbox

        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["broker"]["ok"] is False and health.json()["database"]["ok"] is True
        assert health.json()["broker"]["outbox"] >= 1
    # the broker is back (for the web side; the worker's sweeper has been
    # trying all along): the sweeper queues the job, the worker runs it
    done = wait_status(row, timeout=20)
    assert done.status == Status.DONE, done.error_message
    assert done.job.enqueued_at is not None


def test_healthz_reports_database_and_broker(worker, client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True and body["broker"]["ok"] is True
