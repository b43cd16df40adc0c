# ruff: noqa: F811  (pytest fixtures imported from actors/worker_support are redefined as arguments)
"""Inspection jobs in a REAL Celery worker (subprocess) against the real
Redis, the test database and a local Hub reached over HTTP."""
from __future__ import annotations

import io
import json
import tarfile
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from modelfactory import LLAMA3_8B, make_model, make_tiny_real
from worker_support import alice, bob, wait_for, wait_status, worker  # noqa: F401

from cfm.registry.models import Registration, Status
from cfm.registry.services import registration_create

pytestmark = pytest.mark.services
API = "/api/v1"


def register_hub(client, actor, source, **extra):
    r = client.post(f"{API}/registrations", data=json.dumps({"account": actor.account.pk, "source": source, **extra}),
                    content_type="application/json", **actor.auth)
    assert r.status_code in (200, 201), r.content
    return Registration.objects.get(pk=r.json()["id"])


def test_an_archive_is_inspected_by_the_worker(worker, client, alice, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(make_tiny_real(tmp_path / "tiny"), arcname="tiny")
    r = client.post(f"{API}/registrations", {"account": alice.account.pk,
                                             "archive": SimpleUploadedFile("tiny.tar.gz", buf.getvalue())},
                    **alice.auth)
    assert r.status_code == 201
    row = wait_status(Registration(pk=r.json()["id"]))
    assert (row.status, row.error_code, row.progress_step) == (Status.DONE, "", "done")
    assert row.report["deployable"] and row.report["source"] == "tiny.tar.gz"
    assert row.job.enqueued_at is not None and row.attempts == 1
    body = client.get(f"{API}/registrations/{row.pk}", **alice.auth).json()
    assert body["status"] == "done" and body["report_url"]
    assert client.get(body["report_url"], **alice.auth).json() == row.report


def test_a_hub_repo_is_resolved_to_its_commit_and_inspected(worker, client, alice, tmp_path):
    sha = worker.hub.add_repo("org/llama-8b", make_model(tmp_path / "m", LLAMA3_8B, shards=2))
    row = wait_status(register_hub(client, alice, "hf://org/llama-8b"))
    assert row.status == Status.DONE, row.error_message
    assert row.resolved_commit == sha
    assert row.report["source"] == f"hf://org/llama-8b@{sha}"
    assert row.report["configuration"] == "small"
    assert row.bytes_total > 16e9 and row.progress_step == "done"


def test_a_missing_repo_fails_with_its_code_and_a_clear_message(worker, client, alice):
    row = wait_status(register_hub(client, alice, "org/does-not-exist"))
    assert (row.status, row.error_code, row.attempts) == (Status.FAILED, "repo_not_found", 1)
    assert "org/does-not-exist" in row.error_message
    error = client.get(f"{API}/registrations/{row.pk}", **alice.auth).json()["error"]
    assert error == {"code": "repo_not_found", "message": row.error_message}


def test_a_missing_revision_fails_as_revision_not_found(worker, client, alice, tmp_path):
    worker.hub.add_repo("org/revs", make_tiny_real(tmp_path / "t"))
    row = wait_status(register_hub(client, alice, "org/revs", revision="no-such-branch"))
    assert (row.status, row.error_code) == (Status.FAILED, "revision_not_found")


def test_a_private_repo_needs_its_token_which_never_reaches_the_broker_or_logs(worker, client, alice, tmp_path):
    secret = "hf_private_secret_4242"
    worker.hub.add_repo("org/private", make_tiny_real(tmp_path / "p"), private=True, token=secret)
    without = wait_status(register_hub(client, alice, "org/private", revision="main"))
    # as on the real Hub, a private repo is indistinguishable from a missing one without its token
    assert (without.status, without.error_code) == (Status.FAILED, "repo_not_found")
    with_token = wait_status(register_hub(client, alice, "org/private", token=secret))
    assert with_token.status == Status.DONE, with_token.error_message
    assert secret not in with_token.token_encrypted
    assert secret not in worker.text()  # the task got an id, the worker log shows its arguments


def test_a_transient_hub_fault_is_retried_with_backoff(worker, client, alice, tmp_path):
    worker.hub.add_repo("org/flaky", make_tiny_real(tmp_path / "f"))
    worker.hub.fail_next(1, 503)
    row = wait_status(register_hub(client, alice, "org/flaky"), timeout=30)
    assert row.status == Status.DONE, row.error_message
    assert row.attempts == 2


def test_a_hub_that_stays_down_fails_after_the_bounded_attempts(worker, client, alice, tmp_path):
    worker.hub.add_repo("org/down", make_tiny_real(tmp_path / "d"))
    worker.hub.fail_always = 503
    row = wait_status(register_hub(client, alice, "org/down"), timeout=45)
    assert (row.status, row.error_code, row.attempts) == (Status.FAILED, "hub_unavailable", 3)


def test_a_commit_already_inspected_for_the_account_reuses_its_report(worker, client, alice, bob, tmp_path):
    sha = worker.hub.add_repo("org/reuse", make_tiny_real(tmp_path / "r"))
    first = wait_status(register_hub(client, alice, "org/reuse"))
    assert first.status == Status.DONE
    # no revision given: stored as "main", and the report names the commit it read
    assert (first.revision, first.report["source"]) == ("main", f"hf://org/reuse@{sha}")
    requests_before = worker.hub.requests
    by_commit = wait_status(register_hub(client, alice, "org/reuse", revision=sha))
    assert by_commit.pk != first.pk and by_commit.status == Status.DONE
    assert by_commit.reused_from_id == first.pk and by_commit.report == first.report
    assert worker.hub.requests - requests_before == 1  # the revision's resolution only, no file read
    # another account's inspection is never shared
    theirs = wait_status(register_hub(client, bob, "org/reuse", revision=sha))
    assert theirs.status == Status.DONE and theirs.reused_from_id is None


def test_cancel_stops_a_running_job(worker, client, alice, tmp_path):
    worker.hub.add_repo("org/slow", make_model(tmp_path / "s", LLAMA3_8B, shards=4))
    worker.hub.latency = 1.0  # the job outlives the request that cancels it
    row = register_hub(client, alice, "org/slow")
    wait_status(row, statuses=("fetching", "inspecting"))
    r = client.post(f"{API}/registrations/{row.pk}/cancel", **alice.auth)
    assert r.status_code == 202 and r.json()["error"]["code"] == "cancelled"
    # the worker's next heartbeat finds its claim gone, and the job stops
    wait_for(lambda: f"inspection job {row.job_id}: claim lost" in worker.text(), what="the worker to stop the job")
    time.sleep(0.5)
    row.refresh_from_db()
    assert (row.status, row.error_code, row.report, row.job.claim) == (Status.FAILED, "cancelled", None, "")


def test_a_folder_snapshot_is_inspected_by_the_worker(worker, alice, tmp_path):
    from test_registration_services import snapshot

    files, sizes = snapshot(make_model(tmp_path / "big", LLAMA3_8B, shards=3))
    registration, _ = registration_create(account=alice.account, user=alice.user, source_kind="folder",
                                          source="big", folder_files=files, folder_sizes=sizes)
    row = wait_status(registration)
    assert row.status == Status.DONE and row.report["parameters"] > 8e9
