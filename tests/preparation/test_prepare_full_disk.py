"""Prepare on a full disk (finding 9 of issue 11): the job ends as disk_full
saying the server ran out of disk space, with no server path and no Python
error list, and leaves nothing half-stored."""
from __future__ import annotations

import json

import numpy as np
import pytest
from diskfull import small_disk
from jobrun import run_prepare
from prep_builders import archive_registration, make_ttm
from safetensors.numpy import save_file

from cfm.preparation.errors import PrepareError
from cfm.preparation.models import PrepareJob
from cfm.preparation.storage import LocalStorage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated")]


def _big_ttm(folder):
    make_ttm(folder)
    save_file({"backbone.w": np.ones((512, 256), dtype=np.float32)}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    return folder


def test_local_storage_on_a_full_disk_says_so_without_a_path(tmp_path):
    build = _big_ttm(tmp_path / "build")
    with small_disk(tmp_path / "disk", 64) as disk:
        with pytest.raises(PrepareError) as err:
            LocalStorage(disk).store(build, "prepared/1/2/3")
        assert err.value.code == "disk_full"
        assert "ran out of disk space" in err.value.message
        assert "/" not in err.value.message and "Errno" not in err.value.message
        assert not any(p.name.endswith(".incoming") for p in (disk / "prepared" / "1" / "2").iterdir())


def test_a_prepare_job_on_a_full_disk_fails_clearly(client, alice, tmp_path, settings):
    reg = archive_registration(alice, _big_ttm(tmp_path / "ttm"), tmp_path)
    started = client.post(f"/api/v1/registrations/{reg.pk}/prepare", "", content_type="application/json",
                          **alice.auth)
    assert started.status_code == 202, started.content
    (settings.MEDIA_ROOT / "prepared").mkdir(parents=True, exist_ok=True)
    with small_disk(settings.MEDIA_ROOT / "prepared", 64):
        assert run_prepare(started.json()["id"]) == "failed"
    job = PrepareJob.objects.get()
    assert job.error_code == "disk_full"
    body = client.get(f"/api/v1/prepare-jobs/{job.pk}", **alice.auth).json()
    text = json.dumps(body["error"])
    assert "ran out of disk space" in text and str(tmp_path) not in text and "Errno" not in text
    client.force_login(alice.user)
    page = client.get(f"/models/{reg.pk}/prepare/").content.decode()
    assert "ran out of disk space" in page and str(tmp_path) not in page
