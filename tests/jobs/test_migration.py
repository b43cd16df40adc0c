"""The data migration: registrations and Prepare jobs saved by the two old
runtimes become runs of the one runtime, with their state, and keep their
summary; and back."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("registry", "0003_hub_revision_main"), ("preparation", "0001_initial"), ("jobs", None)]
AFTER = [("registry", "0004_registration_job"), ("preparation", "0002_preparejob_job")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state([t for t in targets if t[1]]).apps


@pytest.mark.django_db(transaction=True)
def test_rows_of_the_old_runtimes_become_runs_with_their_state():
    old = _migrate(BEFORE)
    User = old.get_model("auth", "User")
    Account = old.get_model("accounts", "Account")
    Registration = old.get_model("registry", "Registration")
    PrepareJob = old.get_model("preparation", "PrepareJob")
    user = User.objects.create(username="old-timer")
    account = Account.objects.create(name="old team")
    created = timezone.now() - timedelta(days=3)
    done = Registration.objects.create(
        account=account, created_by=user, source_kind="hub", source="org/done", status="done", attempts=2,
        report={"deployable": True}, progress_step="done", bytes_done=10, bytes_total=100, enqueued_at=created,
        started_at=created, finished_at=created + timedelta(minutes=1))
    Registration.objects.filter(pk=done.pk).update(created_at=created)
    running = Registration.objects.create(
        account=account, source_kind="hub", source="org/running", status="inspecting", attempts=1, claim="c1",
        worker="host:42", lease_expires_at=created, progress_step="reading_headers")
    cancelled = Registration.objects.create(account=account, source_kind="hub", source="org/cancelled",
                                            status="failed", error_code="cancelled", error_message="Cancelled by x.")
    backing_off = Registration.objects.create(account=account, source_kind="hub", source="org/retry",
                                              status="queued", error_code="hub_unavailable", not_before=created)
    review = PrepareJob.objects.create(registration=done, account=account, created_by=user, status="review",
                                       stage="fix_rope_scaling", attempts=1, rope_diff="-a\n+b",
                                       progress={"files": {}})

    new = _migrate(AFTER)
    Job = new.get_model("jobs", "Job")
    Registration = new.get_model("registry", "Registration")
    PrepareJob = new.get_model("preparation", "PrepareJob")

    def run_of(model, pk):
        row = model.objects.get(pk=pk)
        job = Job.objects.get(pk=row.job_id)
        assert job.subject_id == pk
        return row, job

    row, job = run_of(Registration, done.pk)
    assert (job.kind, job.status, job.attempts, job.owner_id, job.progress_step, job.bytes_done) == (
        "inspection", "done", 2, user.pk, "done", 10)
    assert job.created_at == created and job.finished_at == created + timedelta(minutes=1)
    assert (row.status, row.report, row.finished_at) == ("done", {"deployable": True}, job.finished_at)
    _, job = run_of(Registration, running.pk)
    assert (job.status, job.claim, job.worker, job.lease_expires_at) == ("running", "c1", "host:42", created)
    _, job = run_of(Registration, cancelled.pk)
    assert (job.status, job.error_code, job.error_message) == ("cancelled", "cancelled", "Cancelled by x.")
    _, job = run_of(Registration, backing_off.pk)
    assert (job.status, job.run_after, job.error_code) == ("queued", created, "hub_unavailable")
    prep, job = run_of(PrepareJob, review.pk)
    assert (job.kind, job.status, job.progress_step, job.attempts) == ("prepare", "waiting", "fix_rope_scaling", 1)
    assert (prep.status, prep.rope_diff) == ("review", "-a\n+b")

    back = _migrate(BEFORE[:2])
    Registration = back.get_model("registry", "Registration")
    row = Registration.objects.get(pk=running.pk)
    assert (row.attempts, row.claim, row.worker) == (1, "c1", "host:42")
    # leave the database as the other tests expect it: every migration applied (later ones too)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
