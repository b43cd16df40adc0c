"""Deleting a registration with care: refused while deployments of it are
live; otherwise every file cfm holds for it goes (checked on the disk)."""
from __future__ import annotations

from pathlib import Path


def _files_for(reg, settings, tmp_path) -> list[Path]:
    """An upload, a Prepare work folder and two prepared folders, as the jobs leave them."""
    from cfm.preparation.jobs import work_dir_for
    from cfm.preparation.models import PrepareJob
    from cfm.registry.services import upload_dir

    paths = []
    up = upload_dir(reg)
    up.mkdir(parents=True)
    (up / "model.tar.gz").write_bytes(b"x" * 100)
    paths.append(up)
    work = work_dir_for(reg.id)
    (work / "download").mkdir(parents=True)
    (work / "download" / "model.safetensors").write_bytes(b"y" * 100)
    paths.append(work)
    for run in (1, 2):
        folder = Path(settings.MEDIA_ROOT) / "prepared" / str(reg.account_id) / str(reg.id) / str(run)
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        PrepareJob.objects.create(registration=reg, account=reg.account, status="done", storage_backend="local",
                                  storage_location=str(folder))
        paths.append(folder)
    return paths


def test_a_registration_with_live_deployments_is_refused_with_their_list(client, owner, llama, settings, tmp_path,
                                                                         django_capture_on_commit_callbacks):
    import json

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"
    paths = _files_for(llama, settings, tmp_path)
    r = client.post("/api/v1/deployments", data=json.dumps({"registration": llama.id, "space": owner.space.id,
                                                            "serving_name": "still_here"}),
                    content_type="application/json", **owner.auth)
    assert r.status_code == 201
    dep_id = r.json()["id"]
    r = client.delete(f"/api/v1/registrations/{llama.id}", **owner.auth)
    assert r.status_code == 409, r.content
    err = r.json()["error"]
    assert err["code"] == "registration_in_use" and "still_here" in err["message"]
    assert err["deployments"] == [{"id": dep_id, "serving_name": "still_here", "status": "reserved"}]
    assert all(p.exists() for p in paths)
    # the page says the same
    client.force_login(owner.user)
    page = client.post(f"/models/{llama.id}/delete/", follow=True)
    assert b"still_here" in page.content

    assert client.delete(f"/api/v1/deployments/{dep_id}", **owner.auth).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/v1/registrations/{llama.id}", **owner.auth).status_code == 204
    assert [p for p in paths if p.exists()] == []
    assert not (Path(settings.MEDIA_ROOT) / "prepared" / str(owner.account.id) / str(llama.id)).exists() or \
        list((Path(settings.MEDIA_ROOT) / "prepared" / str(owner.account.id) / str(llama.id)).iterdir()) == []


def test_deleting_leaves_other_registrations_files_alone(client, owner, llama, mistral, settings, tmp_path,
                                                         django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"
    mine = _files_for(llama, settings, tmp_path)
    other = _files_for(mistral, settings, tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/v1/registrations/{llama.id}", **owner.auth).status_code == 204
    assert [p for p in mine if p.exists()] == [] and all(p.exists() for p in other)
