"""The Prepare endpoints of the API (/api/v1/registrations/{id}/prepare,
/api/v1/prepare-jobs/{id}...): shapes, refusals, and three users (the owner,
a member of another account: 404, an anonymous caller: 401). The job itself
runs through the worker's own function (the real worker: test_prepare_worker)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from jobrun import run_prepare
from prep_builders import archive_registration, make_ttm, tiny_llama_config, write_json
from safetensors.numpy import save_file

from cfm.preparation.models import PrepareJob, PrepareStatus
from cfm.registry.models import Registration, SourceKind, Status

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated")]
API = "/api/v1"


def post(client, url, actor=None, body=None):
    auth = actor.auth if actor else {}
    data = json.dumps(body) if body is not None else ""
    return client.post(url, data=data, content_type="application/json", **auth)


def test_prepare_through_the_api_reports_progress_result_and_storage(client, alice, ttm_reg, tmp_path):
    started = post(client, f"{API}/registrations/{ttm_reg.pk}/prepare", alice)
    assert started.status_code == 202, started.content
    body = started.json()
    assert (body["status"], body["steps"], body["registration"], body["account"]) == (
        "queued", ["add_tsfm_config"], ttm_reg.pk, alice.account.pk)
    assert body["error"] is None and body["storage"] is None and body["new_report"] is None
    assert body["url"].endswith(f"{API}/prepare-jobs/{body['id']}")
    again = post(client, f"{API}/registrations/{ttm_reg.pk}/prepare", alice)
    assert (again.status_code, again.json()["id"]) == (202, body["id"])  # the active job, not a second one
    assert PrepareJob.objects.count() == 1

    assert run_prepare(body["id"]) == "done"
    done = client.get(body["url"], **alice.auth).json()
    assert done["status"] == "done" and done["stage"] == "done"
    assert done["new_report"]["deployable"] is True and done["new_report"]["preparation"] == []
    stored = Path(done["storage"]["location"])
    assert done["storage"]["backend"] == "local" and (stored / "tsfm_config.json").is_file()
    assert set(done["manifest"]) == {"config.json", "model.safetensors", "tsfm_config.json"}
    assert done["progress"]["bytes_total"] > 0 and done["progress"]["bytes_done"] == done["progress"]["bytes_total"]
    assert done["finished_at"].endswith("Z")

    listing = client.get(f"{API}/registrations/{ttm_reg.pk}/prepare-jobs", **alice.auth).json()
    assert [j["id"] for j in listing["items"]] == [body["id"]] and listing["next"] is None


def test_prepare_endpoints_answer_404_to_a_stranger_and_401_without_a_token(client, alice, bob, ttm_reg):
    job = post(client, f"{API}/registrations/{ttm_reg.pk}/prepare", alice).json()
    for url in (f"{API}/registrations/{ttm_reg.pk}/prepare", f"{API}/prepare-jobs/{job['id']}/cancel",
                f"{API}/prepare-jobs/{job['id']}/review"):
        refused = post(client, url, bob, {"accept": True})
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found", url
        assert post(client, url, None, {"accept": True}).status_code == 401
    for url in (f"{API}/prepare-jobs/{job['id']}", f"{API}/registrations/{ttm_reg.pk}/prepare-jobs",
                f"{API}/prepare-jobs/99999999", f"{API}/prepare-jobs/{2**70}"):
        assert client.get(url, **bob.auth).status_code == 404, url
    assert client.get(f"{API}/prepare-jobs/{job['id']}").status_code == 401
    assert PrepareJob.objects.get().status == PrepareStatus.QUEUED  # the stranger changed nothing


def test_prepare_is_refused_with_a_reason_when_there_is_nothing_to_do(client, alice, tmp_path):
    ready = tmp_path / "ready"
    make_ttm(ready)
    write_json(ready / "tsfm_config.json", {"context_length": 1024, "prediction_length": 48})
    reg = archive_registration(alice, ready, tmp_path)
    nothing = post(client, f"{API}/registrations/{reg.pk}/prepare", alice)
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "nothing_to_do"

    queued = Registration.objects.create(account=alice.account, created_by=alice.user, source="org/x",
                                         source_kind=SourceKind.HUB, status=Status.QUEUED)
    early = post(client, f"{API}/registrations/{queued.pk}/prepare", alice)
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_inspected"
    assert "not been inspected yet" in early.json()["error"]["message"]
    Registration.objects.filter(pk=queued.pk).update(status=Status.FAILED, error_code="repo_not_found")
    failed = post(client, f"{API}/registrations/{queued.pk}/prepare", alice)
    assert failed.status_code == 409 and "did not finish" in failed.json()["error"]["message"]
    assert not PrepareJob.objects.exists()


def test_bad_bodies_are_400_with_the_field_at_fault(client, alice, ttm_reg):
    url = f"{API}/registrations/{ttm_reg.pk}/prepare"
    for data in ("[1]", "{", '{"cast_to_16bit": "perhaps"}'):
        r = client.post(url, data=data, content_type="application/json", **alice.auth)
        assert r.status_code == 400 and r.json()["error"]["fields"], data
    job = post(client, url, alice).json()
    review = post(client, f"{API}/prepare-jobs/{job['id']}/review", alice, {})
    assert review.status_code == 400 and "accept" in review.json()["error"]["fields"]
    not_waiting = post(client, f"{API}/prepare-jobs/{job['id']}/review", alice, {"accept": True})
    assert not_waiting.status_code == 409 and not_waiting.json()["error"]["code"] == "not_in_review"


def test_cancel_and_the_rope_review_through_the_api(client, alice, ttm_reg, tmp_path):
    job = post(client, f"{API}/registrations/{ttm_reg.pk}/prepare", alice).json()
    cancelled = post(client, f"{API}/prepare-jobs/{job['id']}/cancel", alice)
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["error"]["code"] == "cancelled"

    folder = tmp_path / "llama31"
    folder.mkdir()
    save_file({"model.norm.weight": np.ones(16, dtype=np.float16)}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    write_json(folder / "config.json", tiny_llama_config(num_hidden_layers=0, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}))
    write_json(folder / "tokenizer.json", {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0},
                                                                        "unk_token": "a"}})
    reg = archive_registration(alice, folder, tmp_path)
    job = post(client, f"{API}/registrations/{reg.pk}/prepare", alice).json()
    assert run_prepare(job["id"]) == "review"
    waiting = client.get(job["url"], **alice.auth).json()
    assert waiting["status"] == "review" and '"dynamic"' in waiting["rope_diff"]
    refused = post(client, f"{API}/prepare-jobs/{job['id']}/review", alice, {"accept": False})
    assert refused.status_code == 202 and refused.json()["status"] == "queued"
    assert run_prepare(job["id"]) == "done"
    stored = Path(client.get(job["url"], **alice.auth).json()["storage"]["location"])
    assert json.loads((stored / "config.json").read_text())["rope_scaling"]["rope_type"] == "llama3"  # untouched


def test_the_prepare_endpoints_are_in_the_openapi_schema(client):
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    assert {"/api/v1/registrations/{registration_id}/prepare", "/api/v1/prepare-jobs/{job_id}",
            "/api/v1/prepare-jobs/{job_id}/cancel", "/api/v1/prepare-jobs/{job_id}/review",
            "/api/v1/registrations/{registration_id}/prepare-jobs"} <= set(paths)


def test_each_run_is_stored_in_its_own_folder_so_an_earlier_result_stays_as_described(client, alice, ttm_reg):
    first = post(client, f"{API}/registrations/{ttm_reg.pk}/prepare", alice).json()
    assert run_prepare(first["id"]) == "done"
    second = post(client, f"{API}/registrations/{ttm_reg.pk}/prepare", alice, {"cast_to_16bit": True}).json()
    assert run_prepare(second["id"]) == "done"
    a, b = (client.get(j["url"], **alice.auth).json() for j in (first, second))
    assert a["storage"]["location"] != b["storage"]["location"]
    assert a["storage"]["location"].endswith(f"/{ttm_reg.pk}/1") and b["storage"]["location"].endswith("/2")
    for job in (a, b):  # each folder still holds what its job's manifest says
        for name, entry in job["manifest"].items():
            assert (Path(job["storage"]["location"]) / name).stat().st_size == entry["size"]
