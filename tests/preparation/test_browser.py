"""The Prepare page in a real Chromium: live progress that updates itself
and stops polling when the job ends, the rope review, the result. Saves
screenshots to /tmp/shots."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.utils import timezone
from jobrun import run_prepare
from prep_builders import make_ttm
from worker_support import own_broker  # noqa: F401

from cfm.inspection import inspect
from cfm.jobs.models import Job, JobStatus
from cfm.preparation.models import PrepareJob, PrepareStatus
from cfm.registry.models import Registration, SourceKind, Status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("own_broker")]  # the jobs run here, not by a session worker
SHOTS = Path("/tmp/shots")
# Playwright's sync API runs an event loop in this thread; the ORM calls here are ours.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.fixture(autouse=True)
def _env(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"
    settings.CFM_S3_BUCKET = ""
    SHOTS.mkdir(exist_ok=True)


def _login(page, live_server, client, user):
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])


def test_prepare_page_follows_the_job_live_and_shows_the_result(page, live_server, client, alice, tmp_path):
    folder = make_ttm(tmp_path / "granite-ttm")
    registration = Registration.objects.create(
        account=alice.account, created_by=alice.user, source_kind=SourceKind.FOLDER, source="ibm/granite-ttm-r2",
        status=Status.DONE, report=inspect(str(folder)).to_dict(), upload_path=str(tmp_path / "none"))
    _login(page, live_server, client, alice.user)
    url = f"{live_server.url}/models/{registration.pk}/prepare/"
    page.goto(url)
    assert page.locator("#prepare-start").is_enabled()
    page.screenshot(path=str(SHOTS / "prepare-start.png"), full_page=True)

    # A job mid-download, as the worker's heartbeat writes it.
    run = Job.objects.create(kind="prepare", subject_id=0, status=JobStatus.RUNNING, claim="x")
    job = PrepareJob.objects.create(
        registration=registration, account=alice.account, created_by=alice.user, steps=["add_tsfm_config"],
        old_report=registration.report, status=PrepareStatus.RUNNING, stage="downloading", job=run,
        bytes_done=3_400_000_000, bytes_total=8_100_000_000, started_at=timezone.now(),
        progress={"files": {"config.json": {"done": 1200, "total": 1200},
                            "model-00001-of-00002.safetensors": {"done": 3_399_998_800, "total": 4_990_000_000},
                            "model-00002-of-00002.safetensors": {"done": 0, "total": 3_110_000_000}},
                  "done": 3_400_000_000, "total": 8_100_000_000, "rate": 48_200_000, "eta": 97.0})
    page.goto(url)
    assert page.locator("#file-progress tbody tr").count() == 3
    assert "1 min 37 s" in page.locator("#eta").inner_text()
    page.screenshot(path=str(SHOTS / "prepare-running.png"), full_page=True)

    # The worker finishes: the polled fragment swaps in the result and stops polling.
    # (sent, as far as a session worker's sweeper can tell: it leaves the run to this test)
    Job.objects.filter(pk=run.pk).update(subject_id=job.pk, status=JobStatus.QUEUED, claim="",
                                         enqueued_at=timezone.now())
    Registration.objects.filter(pk=registration.pk).update(source_kind=SourceKind.ARCHIVE)
    archive = tmp_path / "granite-ttm.tar"
    import tarfile

    with tarfile.open(archive, "w") as tf:
        tf.add(folder, arcname="granite-ttm")
    Registration.objects.filter(pk=registration.pk).update(upload_path=str(archive))
    assert run_prepare(job.pk) == "done"
    page.locator("#prepare-stored").wait_for(timeout=10_000)
    assert page.locator("#prepare-live").get_attribute("hx-trigger") is None
    assert "deployable" in page.locator("#new-verdict").inner_text()
    assert page.locator("#prepare-start").is_enabled()  # swapped out of band, no reload
    page.screenshot(path=str(SHOTS / "prepare-done.png"), full_page=True)


def test_rope_review_shows_the_diff(page, live_server, client, alice, tmp_path):
    import json

    from prep_builders import tiny_llama_config

    from cfm.preparation.steps import rope_diff

    config = tiny_llama_config(num_hidden_layers=32, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192})
    report = {"deployable": True, "preparation": ["fix_rope_scaling"], "checks": []}
    registration = Registration.objects.create(
        account=alice.account, created_by=alice.user, source_kind=SourceKind.HUB,
        source="meta-llama/Llama-3.1-8B-Instruct", status=Status.DONE, report=report)
    PrepareJob.objects.create(registration=registration, account=alice.account, created_by=alice.user,
                              steps=["fix_rope_scaling"], old_report=report, status=PrepareStatus.REVIEW,
                              stage="fix_rope_scaling", rope_diff=rope_diff(json.loads(json.dumps(config))))
    _login(page, live_server, client, alice.user)
    page.goto(f"{live_server.url}/models/{registration.pk}/prepare/")
    assert page.locator(".diff .diff-add").count() == 2
    page.screenshot(path=str(SHOTS / "prepare-review.png"), full_page=True)
