"""Deploying for real against the imitation and moto: what reaches them,
byte for byte, the statuses, the ledger, each failure of the contract."""
from __future__ import annotations

import hashlib
import json

from platformsupport import bucket_objects, deploy, drive

from cfm import catalog


def usage(client, actor) -> dict:
    return client.get(f"/api/v1/accounts/{actor.account.id}/usage", **actor.auth).json()


def test_deploy_uploads_creates_and_becomes_ready_with_the_contract_requests(client, connected, tiny_archive,
                                                                           platform, bucket, tmp_path):
    # every file of the archive goes: a README too
    import tarfile

    (tmp_path / "tiny-llama" / "README.md").write_text("# tiny\n")
    with tarfile.open(tiny_archive.upload_path, "w:gz") as tf:
        tf.add(tmp_path / "tiny-llama", arcname="tiny-llama")
    r = deploy(client, connected, tiny_archive, "tiny_chat")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "uploading" and body["platform"] is None and body["units"] == 1
    assert [e["status"] for e in body["events"]] == ["uploading"]
    dep = drive(body["id"])
    assert dep.state == "ready", dep.message_key

    # The bucket: every file + SHA256SUMS under prefix/account/registration/digest/
    objects = bucket_objects(bucket)
    manifest_key = next(k for k in objects if k.endswith("/SHA256SUMS"))
    digest = hashlib.sha256(objects[manifest_key]).hexdigest()[:12]
    base = f"cfm/{connected.account.id}/{tiny_archive.id}/{digest}"
    assert manifest_key == f"{base}/SHA256SUMS"
    folder = tmp_path / "tiny-llama"
    local = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert {k.removeprefix(base + "/"): v for k, v in objects.items() if k != manifest_key} == local
    lines = objects[manifest_key].decode().splitlines()
    assert sorted(line.split("  ", 1)[1] for line in lines) == sorted(local)
    assert all(hashlib.sha256(local[n]).hexdigest() == d for d, n in (line.split("  ", 1) for line in lines))

    # The platform: token, model, deployment, polls — exactly the contract's bodies
    calls = [(q.method, q.path) for q in platform.requests]
    assert calls[:3] == [("POST", "/identity/token"), ("POST", "/ml/v4/models"), ("POST", "/ml/v4/deployments")]
    assert set(calls[3:]) == {("GET", f"/ml/v4/deployments/{dep.platform['deployment_id']}")}
    assert calls.count(("POST", "/identity/token")) == 1  # the token is reused
    token_req = platform.requests[0]
    assert token_req.body == {"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": "test-api-key-123"}
    model_req, dep_req = platform.requests[1], platform.requests[2]
    for q in platform.requests[1:]:
        assert q.headers["Authorization"].startswith("Bearer tok-")
        assert len(q.query["version"]) == 10 and q.query["version"][4] == "-"
    assert model_req.body == {
        "name": tiny_archive.source, "type": "custom_foundation_model_1.0",
        "software_spec": {"name": dep.software_spec}, "space_id": "space-1",
        "foundation_model": {"model_id": tiny_archive.source, "model_location": {
            "type": "connection_asset", "connection": {"id": "conn-77"},
            "location": {"bucket": bucket.name, "file_path": base}}}}
    assert dep_req.body == {
        "asset": {"id": dep.platform["asset_id"]}, "name": "tiny_chat", "space_id": "space-1",
        "online": {"parameters": {"serving_name": "tiny_chat", "foundation_model": dep.parameters}},
        "hardware_request": {"size": "gpu_s", "num_nodes": 1}}
    assert platform.requests[3].query["space_id"] == "space-1"

    got = client.get(f"/api/v1/deployments/{dep.id}", **connected.auth).json()
    assert got["status"] == "ready"
    assert got["platform"] == {"asset_id": dep.platform["asset_id"], "deployment_id": dep.platform["deployment_id"],
                               "file_path": base,
                               "inference_url": f"{platform.url}/ml/v1/deployments/{dep.platform['deployment_id']}"
                                                "/text/generation"}
    assert [e["status"] for e in got["events"]] == ["uploading", "uploading", "creating", "creating",
                                                    "initializing", "ready"]
    assert all(e["at"].endswith("Z") and e["message"] for e in got["events"])
    assert got["progress"]["bytes_done"] == got["progress"]["bytes_total"] > 0
    assert usage(client, connected)["used_units"] == 1


def test_the_same_folder_is_not_uploaded_twice(client, connected, tiny_archive, platform, bucket):
    first = drive(deploy(client, connected, tiny_archive, "one").json()["id"])
    keys = set(bucket_objects(bucket))
    second = drive(deploy(client, connected, tiny_archive, "two").json()["id"])
    assert second.state == "ready" and set(bucket_objects(bucket)) == keys
    assert second.platform["file_path"] == first.platform["file_path"]
    assert "upload_skipped" in list(second.events.values_list("message_key", flat=True))


def test_without_an_inference_url_the_platform_default_is_used(client, connected, tiny_archive, platform):
    platform.inference_url = False
    dep = drive(deploy(client, connected, tiny_archive, "noinf").json()["id"])
    assert dep.platform["inference_url"] == f"{platform.url}/ml/v1/deployments/{dep.platform['deployment_id']}" \
                                            "/text/generation"


def test_delete_on_a_real_deployment_answers_202_then_removes_deployment_then_model(client, connected,
                                                                                  tiny_archive, platform):
    dep = drive(deploy(client, connected, tiny_archive, "gone_soon").json()["id"])
    r = client.delete(f"/api/v1/deployments/{dep.id}", **connected.auth)
    assert r.status_code == 202 and r.json()["status"] == "deleting"
    assert usage(client, connected)["used_units"] == 1  # held until deleted
    n = len(platform.requests)
    dep = drive(dep.id)
    assert dep.state == "deleted" and dep.status == "released"
    calls = [(q.method, q.path, q.query.get("space_id")) for q in platform.requests[n:]]
    assert calls == [("DELETE", f"/ml/v4/deployments/{dep.platform['deployment_id']}", "space-1"),
                     ("DELETE", f"/ml/v4/models/{dep.platform['asset_id']}", "space-1")]
    assert usage(client, connected)["used_units"] == 0
    assert client.delete(f"/api/v1/deployments/{dep.id}", **connected.auth).status_code == 404
    assert platform.deployments == {} and platform.models == {}


def test_without_a_connection_the_deployment_is_a_plan_in_the_contract_shapes(client, owner, llama, ttm):
    r = deploy(client, owner, llama, "plan_only")
    assert r.status_code == 201
    d = r.json()
    assert d["status"] == "reserved" and d["platform"] is None and "not deployed" in d["status_message"]
    asset, dep = d["platform_request"]["asset"], d["platform_request"]["deployment"]
    assert set(asset) == {"name", "type", "software_spec", "space_id", "foundation_model"}
    assert set(asset["foundation_model"]) == {"model_id", "model_location"}
    assert set(asset["foundation_model"]["model_location"]) == {"type", "connection", "location"}
    assert set(dep) == {"asset", "name", "space_id", "online", "hardware_request"}
    ts = deploy(client, owner, ttm, "plan_ts").json()["platform_request"]["deployment"]
    assert ts["hardware_spec"] == {"name": "S", "num_nodes": 1} and "hardware_request" not in ts
    assert ts["online"] == {"parameters": {"serving_name": "plan_ts"}}
    assert client.delete(f"/api/v1/deployments/{d['id']}", **owner.auth).status_code == 204


def test_a_headers_only_folder_upload_cannot_be_deployed_for_real(client, connected, tmp_path):
    import json as _json

    from quotafactory import llama_report

    from cfm.registry.models import Registration

    manifest = tmp_path / "manifest.json"
    manifest.write_text(_json.dumps({"sizes": {"config.json": 10, "model.safetensors": 10_000_000},
                                     "stored": {"config.json": 10, "model.safetensors": 4096}}))
    reg = Registration.objects.create(account=connected.account, source_kind="folder", source="my-folder",
                                      status="done", report=llama_report(), upload_path=str(manifest))
    r = deploy(client, connected, reg, "headers_only")
    assert r.status_code == 409 and r.json()["error"]["code"] == "files_not_held"
    assert usage(client, connected)["used_units"] == 0


# --- failures of the contract ----------------------------------------------------------------------------------


def failed(client, actor, reg, name, **extra):
    r = deploy(client, actor, reg, name, **extra)
    assert r.status_code == 201, r.content
    dep = drive(r.json()["id"])
    body = client.get(f"/api/v1/deployments/{dep.id}", **actor.auth).json()
    assert body["status"] == "failed", body
    assert usage(client, actor)["used_units"] == 0  # released at once
    return dep, body


def test_iam_refusing_the_key_fails_with_the_api_key_refused(client, connected, tiny_archive, platform):
    platform.api_keys = {"not-this-one"}
    dep, body = failed(client, connected, tiny_archive, "badkey")
    assert body["error"]["code"] == "api_key_refused" and "API key was refused" in body["status_message"]


def test_a_key_that_cannot_deploy_into_the_space(client, connected, tiny_archive, platform):
    platform.forbidden_spaces = {"space-1"}
    dep, body = failed(client, connected, tiny_archive, "forbidden")
    assert body["error"]["code"] == "space_forbidden" and "space-1" in body["status_message"]


def test_a_400_shows_the_platforms_message_and_the_asset_is_deleted(client, connected, tiny_archive, platform):
    platform.fail_deployment("serving_name tiny is not valid here", code="invalid_input", on="create")
    dep, body = failed(client, connected, tiny_archive, "bad_request")
    assert body["error"]["code"] == "platform_rejected"
    assert "serving_name tiny is not valid here" in body["status_message"]
    assert platform.models == {}  # cfm deleted the asset it created
    assert ("DELETE", f"/ml/v4/models/{dep.platform['asset_id']}") in [(q.method, q.path) for q in platform.requests]


def test_insufficient_resources_advises_the_next_configuration_up(client, connected, tiny_archive, platform):
    platform.fail_deployment("Deployment failed: insufficient resources for gpu_s", on="initializing")
    dep, body = failed(client, connected, tiny_archive, "too_small")
    assert body["error"] == {"code": "insufficient_resources", "next_configuration": "medium"}
    assert "Medium" in body["status_message"]
    assert platform.deployments == {} and platform.models == {}


def test_the_platforms_own_limit_gives_the_same_notice_survey_and_increase_request(client, connected,
                                                                                 tiny_archive, platform):
    platform.fail_deployment("The number of deployments exceeds the account limit", code="deployment_limit_reached",
                             on="create")
    dep, body = failed(client, connected, tiny_archive, "at_limit")
    err = body["error"]
    assert err["code"] == "quota_exceeded" and err["source"] == "platform"
    assert {"limit_units", "used_units", "needed_units", "refusal", "survey_url", "increase_request_url"} <= set(err)
    assert f"refusal={err['refusal']}" in err["survey_url"]
    assert client.get(err["increase_request_url"]).status_code in (200, 302)


def test_429_and_5xx_are_retried_honouring_retry_after(client, connected, tiny_archive, platform):
    platform.script("POST", "/ml/v4/models", 429, {"errors": [{"code": "rate", "message": "slow down"}]}, times=2,
                    headers={"Retry-After": "0"})
    platform.script("GET", "/ml/v4/deployments/", 503, None, times=1, headers={"Retry-After": "0"})
    dep = drive(deploy(client, connected, tiny_archive, "retried").json()["id"])
    assert dep.state == "ready"
    assert [q.path for q in platform.requests].count("/ml/v4/models") == 3


def test_the_platform_unavailable_after_the_retries(client, connected, tiny_archive, platform):
    platform.script("POST", "/ml/v4/models", 503, None, times=50, headers={"Retry-After": "0"})
    dep, body = failed(client, connected, tiny_archive, "unavailable")
    assert body["error"]["code"] == "platform_unavailable" and "unavailable" in body["status_message"]


def test_a_deployment_never_ready_gives_up_after_the_timeout(client, connected, tiny_archive, platform, settings):
    from datetime import timedelta

    from cfm.platform import tracking
    from cfm.quota.models import Deployment

    platform.ready_after = 3600
    dep_id = deploy(client, connected, tiny_archive, "slow").json()["id"]
    assert tracking.step(Deployment.objects.get(pk=dep_id)) is not None
    Deployment.objects.filter(pk=dep_id).update(
        tracking_started_at=Deployment.objects.get(pk=dep_id).created_at - timedelta(seconds=3601))
    dep = drive(dep_id)
    assert dep.state == "failed" and dep.error == {"code": "timeout"} and platform.deployments == {}


def test_japanese_messages(client, connected, tiny_archive, platform):
    platform.api_keys = {"other"}
    dep_id = deploy(client, connected, tiny_archive, "ja_msg").json()["id"]
    drive(dep_id)
    body = client.get(f"/api/v1/deployments/{dep_id}", HTTP_ACCEPT_LANGUAGE="ja", **connected.auth).json()
    assert body["status"] == "failed"
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in body["status_message"])


def test_time_series_deployments_send_hardware_spec_and_no_parameters(client, connected, platform, bucket,
                                                                     tmp_path):
    from quotafactory import timeseries_report

    from cfm.registry.models import Registration

    archive = tmp_path / "ttm.tar.gz"
    import tarfile

    folder = tmp_path / "ttm"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname="ttm")
    reg = Registration.objects.create(account=connected.account, source_kind="archive", source="ttm.tar.gz",
                                      upload_path=str(archive), status="done", report=timeseries_report())
    dep_id = deploy(client, connected, reg, "ts_model").json()["id"]
    from cfm.platform import tracking

    # The archive's files are fetched as Prepare fetches them; the fake config is not a model, so fetch
    # may refuse it: put a folder with a manifest in place instead.
    staged = tracking.staging_root() / f"dep-{dep_id}" / "folder"
    staged.mkdir(parents=True)
    (staged / "config.json").write_text("{}")
    (staged / "SHA256SUMS").write_text(f"{hashlib.sha256(b'{}').hexdigest()}  config.json\n")
    dep = drive(dep_id)
    assert dep.state == "ready", dep.message_params
    dep_req = next(q for q in platform.requests if q.method == "POST" and q.path == "/ml/v4/deployments")
    assert dep_req.body == {"asset": {"id": dep.platform["asset_id"]}, "name": "ts_model", "space_id": "space-1",
                            "online": {"parameters": {"serving_name": "ts_model"}},
                            "hardware_spec": {"name": "S", "num_nodes": 1}}
    assert catalog.TS_HARDWARE_SPEC["small"] == {"name": "S", "num_nodes": 1}


def test_a_tracking_job_that_ended_unfinished_fails_the_deployment_and_releases_it(client, connected, tiny_archive,
                                                                                 platform):
    from django.utils import timezone

    from cfm.jobs.models import Job
    from cfm.platform.jobs import TrackDeployment
    from cfm.quota.models import Deployment

    dep_id = deploy(client, connected, tiny_archive, "orphan").json()["id"]
    job = Job.objects.create(kind="deployment", subject_id=dep_id, status="failed", error_code="worker_lost",
                             error_message="The deployment tracking was interrupted 3 times.",
                             finished_at=timezone.now())
    Deployment.objects.filter(pk=dep_id).update(job=job)
    TrackDeployment().housekeeping(timezone.now())
    body = client.get(f"/api/v1/deployments/{dep_id}", **connected.auth).json()
    assert body["status"] == "failed" and body["error"] == {"code": "worker_lost"}
    assert "interrupted 3 times" in body["status_message"]
    assert usage(client, connected)["used_units"] == 0


def test_the_latest_prepared_folder_is_what_goes_to_the_bucket(client, connected, tiny_archive, platform, bucket,
                                                               tmp_path, settings):
    import shutil
    from pathlib import Path

    from cfm.preparation.models import PrepareJob
    from cfm.preparation.storage import write_manifest

    for run, marker in ((1, "first"), (2, "second")):
        folder = Path(settings.MEDIA_ROOT) / "prepared" / str(connected.account.id) / str(tiny_archive.id) / str(run)
        shutil.copytree(tmp_path / "tiny-llama", folder)
        (folder / "generation_config.json").write_text(json.dumps({"run": marker}))
        write_manifest(folder)
        PrepareJob.objects.create(registration=tiny_archive, account=connected.account, status="done",
                                  storage_backend="local", storage_location=str(folder),
                                  new_report=tiny_archive.report)
    PrepareJob.objects.create(registration=tiny_archive, account=connected.account, status="failed")
    dep = drive(deploy(client, connected, tiny_archive, "prepared").json()["id"])
    assert dep.state == "ready"
    objects = bucket_objects(bucket)
    manifest = (folder / "SHA256SUMS").read_bytes()
    base = f"cfm/{connected.account.id}/{tiny_archive.id}/{hashlib.sha256(manifest).hexdigest()[:12]}"
    assert objects[f"{base}/SHA256SUMS"] == manifest
    assert json.loads(objects[f"{base}/generation_config.json"]) == {"run": "second"}
    assert set(objects) == {f"{base}/{p.name}" for p in folder.iterdir()}
