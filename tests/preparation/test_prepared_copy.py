# ruff: noqa: F811  (pytest fixtures imported from actors are redefined as arguments)
"""Prepared means deployable: after a successful Prepare the model's page
shows the prepared copy's report as its current state (the original one
click away), Deploy uses that copy and its report, the copy can be
inspected again, and any member of the account can download it as a zip
streamed as it is written (a stranger gets 404). Three users: the owner,
a member of another account, anonymous."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from actors import alice, bob  # noqa: F401
from django.urls import reverse
from jobrun import run_prepare

from cfm.preparation.models import PrepareJob
from cfm.preparation.selectors import latest_prepared
from cfm.preparation.zipstream import CHUNK, zip_stream
from cfm.quota import services as quota

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated")]
API = "/api/v1"


def prepare(client, registration) -> PrepareJob:
    client.post(reverse("prepare", args=[registration.pk]))
    job = PrepareJob.objects.get(registration=registration, status="queued")
    assert run_prepare(job.pk) == "done"
    job.refresh_from_db()
    return job


def test_before_prepare_the_model_is_refused_and_after_it_the_prepared_copy_deploys(client, alice, ttm_reg):
    space = alice.account.spaces.get()
    assert not ttm_reg.report["deployable"] and latest_prepared(ttm_reg) is None
    with pytest.raises(quota.DeploymentRefused) as refused:
        quota.deployment_request(user=alice.user, registration=ttm_reg, space=space, serving_name="ttm_one")
    assert refused.value.code == "not_deployable"

    client.force_login(alice.user)
    job = prepare(client, ttm_reg)
    prepared = latest_prepared(ttm_reg)
    assert prepared is not None and prepared.job == job and prepared.deployable
    ttm_reg.refresh_from_db()
    assert not ttm_reg.report["deployable"]  # the original report is kept as it was

    r = client.post(API + "/deployments", data=json.dumps({"registration": ttm_reg.pk, "space": space.pk,
                                                            "serving_name": "ttm_one"}),
                    content_type="application/json", **alice.auth)
    assert r.status_code == 201, r.content
    assert r.json()["configuration"] == prepared.report["configuration"]


def test_the_model_page_shows_the_prepared_report_with_the_original_one_click_away(client, alice, bob, ttm_reg):
    client.force_login(alice.user)
    before = client.get(reverse("registration", args=[ttm_reg.pk])).content.decode()
    assert "Not deployable" in before and 'id="prepared-note"' not in before
    job = prepare(client, ttm_reg)

    page = client.get(reverse("registration", args=[ttm_reg.pk])).content.decode()
    assert 'id="prepared-note"' in page and "the model as cfm deploys it" in page
    assert "The platform will accept this model." in page
    assert reverse("quota:deploy", args=[ttm_reg.pk]) in page
    assert reverse("prepared_download", args=[ttm_reg.pk, job.pk]) in page
    assert job.storage_location not in page  # never a server path
    assert 'id="rerun-original"' in page and "Re-inspect the original" in page
    assert 'id="original-report-link"' in page

    original = client.get(reverse("registration", args=[ttm_reg.pk]) + "?report=original").content.decode()
    assert "The platform will refuse this model as it is." in original
    assert 'id="prepared-report-link"' in original

    deploy = client.get(reverse("quota:deploy", args=[ttm_reg.pk])).content.decode()
    assert 'id="deploy-prepared"' in deploy and "cannot be deployed as it is" not in deploy

    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "Deployable" in dashboard

    client.force_login(bob.user)
    assert client.get(reverse("registration", args=[ttm_reg.pk])).status_code == 404


def test_re_inspecting_the_prepared_copy_updates_its_report(client, alice, ttm_reg):
    client.force_login(alice.user)
    job = prepare(client, ttm_reg)
    (Path(job.storage_location) / "tsfm_config.json").unlink()  # the copy lost what Prepare added
    client.post(reverse("prepared_reinspect", args=[ttm_reg.pk]))
    prepared = latest_prepared(ttm_reg)
    assert not prepared.deployable and prepared.report["source"] == job.new_report["source"]
    space = alice.account.spaces.get()
    with pytest.raises(quota.DeploymentRefused) as refused:
        quota.deployment_request(user=alice.user, registration=ttm_reg, space=space, serving_name="ttm_two")
    assert refused.value.code == "not_deployable" and "prepared copy" in refused.value.message


def _unzip(response) -> zipfile.ZipFile:
    assert response.streaming
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_a_member_downloads_the_prepared_folder_as_a_streamed_zip_and_a_stranger_gets_404(client, alice, bob,
                                                                                           ttm_reg):
    client.force_login(alice.user)
    job = prepare(client, ttm_reg)
    url = reverse("prepared_download", args=[ttm_reg.pk, job.pk])
    r = client.get(url)
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    assert r["Content-Disposition"].startswith('attachment; filename="') and ".zip" in r["Content-Disposition"]
    archive = _unzip(r)
    assert archive.testzip() is None
    names = archive.namelist()
    root = names[0].split("/")[0]
    assert {n.split("/", 1)[1] for n in names} == {*job.manifest, "SHA256SUMS"}
    for name, meta in job.manifest.items():
        assert hashlib.sha256(archive.read(f"{root}/{name}")).hexdigest() == meta["sha256"]
    sums = archive.read(f"{root}/SHA256SUMS").decode()
    assert all(f"{m['sha256']}  {n}" in sums for n, m in job.manifest.items())

    client.force_login(bob.user)
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url)["Location"].startswith(reverse("login"))


def test_a_download_of_a_run_that_is_not_a_prepared_copy_is_404(client, alice, ttm_reg):
    client.force_login(alice.user)
    assert client.get(reverse("prepared_download", args=[ttm_reg.pk, 987654])).status_code == 404
    job = prepare(client, ttm_reg)
    import shutil

    shutil.rmtree(job.storage_location)
    r = client.get(reverse("prepared_download", args=[ttm_reg.pk, job.pk]), follow=True)
    assert "no longer stored" in r.content.decode()


def test_the_zip_is_sent_in_bounded_chunks_whatever_the_size_of_a_file(tmp_path):
    big = tmp_path / "model.safetensors"
    big.write_bytes(bytes(range(256)) * (5 * CHUNK // 256 + 7))
    small = tmp_path / "config.json"
    small.write_text("{}")
    members = [(p.name, p.stat().st_size, (lambda p=p: open(p, "rb"))) for p in (small, big)]
    chunks = list(zip_stream(members, root="m"))
    assert len(chunks) >= 5 and max(map(len, chunks)) <= CHUNK + 4096
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.read("m/model.safetensors") == big.read_bytes() and archive.read("m/config.json") == b"{}"


def test_a_prepared_copy_in_a_bucket_downloads_the_same_way(client, alice, ttm_reg, s3_server, settings):
    import boto3

    settings.CFM_S3_ENDPOINT, settings.CFM_S3_BUCKET = s3_server, "prepared-models"
    settings.CFM_S3_ACCESS_KEY = settings.CFM_S3_SECRET_KEY = "test"
    settings.CFM_S3_REGION = "us-east-1"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket="prepared-models")
    client.force_login(alice.user)
    job = prepare(client, ttm_reg)
    assert job.storage_backend == "s3"
    page = client.get(reverse("registration", args=[ttm_reg.pk])).content.decode()
    assert 'id="reinspect-prepared"' not in page  # a copy in a bucket is re-checked by preparing again
    archive = _unzip(client.get(reverse("prepared_download", args=[ttm_reg.pk, job.pk])))
    root = archive.namelist()[0].split("/")[0]
    for name, meta in job.manifest.items():
        assert hashlib.sha256(archive.read(f"{root}/{name}")).hexdigest() == meta["sha256"]


def test_the_model_page_lists_its_live_deployments_and_offers_no_delete_until_they_are_gone(client, alice, ttm_reg):
    client.force_login(alice.user)
    prepare(client, ttm_reg)
    dep = quota.deployment_request(user=alice.user, registration=ttm_reg, space=alice.account.spaces.get(),
                                   serving_name="ttm_live").deployment
    page = client.get(reverse("registration", args=[ttm_reg.pk])).content.decode()
    assert 'id="in-use-note"' in page and "ttm_live" in page and reverse("quota:deployment", args=[dep.pk]) in page
    assert reverse("registration_delete", args=[ttm_reg.pk]) not in page
    quota.deployment_delete(user=alice.user, deployment=dep)
    page = client.get(reverse("registration", args=[ttm_reg.pk])).content.decode()
    assert 'id="in-use-note"' not in page and reverse("registration_delete", args=[ttm_reg.pk]) in page
