"""jobs.run in this process (the worker tests run it in a real worker): the
claim, the time limit and an internal error, each ending with a clear row."""
from __future__ import annotations

import io
import tarfile

import pytest
from actors import make_actor
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.uploadedfile import SimpleUploadedFile
from jobrun import run_latest
from modelfactory import make_tiny_real
from worker_support import own_broker  # noqa: F401

from cfm.jobs.runtime import kind_of
from cfm.registry import jobs
from cfm.registry.models import Registration, Status
from cfm.registry.services import registration_create


@pytest.fixture
def archived(committed_db, own_broker, tmp_path, settings):  # noqa: F811
    """Committed: the job's heartbeat thread has a database connection of its own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    owner = make_actor("owner")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(make_tiny_real(tmp_path / "tiny"), arcname="tiny")
    registration, _ = registration_create(account=owner.account, user=owner.user, source_kind="archive", source="",
                                          archive=SimpleUploadedFile("tiny.tar.gz", buf.getvalue()))
    return registration


def test_a_job_runs_once_however_often_its_message_arrives(archived):
    assert run_latest(archived) == "done"
    assert run_latest(archived) == "skipped"
    row = Registration.objects.get(pk=archived.pk)
    assert (row.status, row.attempts, row.job.claim, row.job.lease_expires_at) == (Status.DONE, 1, "", None)
    assert row.bytes_done > 0 and row.bytes_total > row.bytes_done


def test_the_soft_time_limit_fails_the_job_as_timeout(archived, monkeypatch):
    def too_slow(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(jobs, "inspect_source", too_slow)
    assert run_latest(archived) == "failed"
    row = Registration.objects.get(pk=archived.pk)
    assert (row.status, row.error_code) == (Status.FAILED, "timeout")
    assert "longer than" in row.error_message


def test_an_internal_error_fails_the_job_without_a_traceback(archived, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("config")

    monkeypatch.setattr(jobs, "inspect_source", broken)
    assert run_latest(archived) == "failed"
    row = Registration.objects.get(pk=archived.pk)
    assert row.error_code == "source_unreadable"
    assert "Traceback" not in row.error_message and "KeyError" not in row.error_message


def test_a_job_whose_upload_is_gone_fails_with_a_clear_message(archived):
    from pathlib import Path

    Path(archived.upload_path).unlink()
    run_latest(archived)
    row = Registration.objects.get(pk=archived.pk)
    assert (row.status, row.error_code) == (Status.FAILED, "source_unreadable")
    assert "upload" in row.error_message


def test_the_task_takes_only_an_id_and_has_time_limits(settings):
    soft, hard = kind_of(jobs.KIND).time_limits()
    assert soft == settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert hard == settings.CELERY_TASK_TIME_LIMIT > soft
    assert settings.CELERY_TASK_SERIALIZER == "json" and settings.CELERY_ACCEPT_CONTENT == ["json"]
    assert "cfm-sweep" in settings.CELERY_BEAT_SCHEDULE
