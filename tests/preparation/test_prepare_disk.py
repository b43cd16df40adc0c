"""The Prepare page says how much it will download and how much disk it
needs, from the report's file list (no request to the source), and refuses
to start, in the page and the API, when the server's free disk (its media
folder's) is below that. English and Japanese."""
from __future__ import annotations

import shutil

import pytest
from django.urls import reverse
from prep_builders import archive_registration, make_ttm, tiny_llama_config, write_json

from cfm.inspection import inspect
from cfm.preparation.download import DISK_MARGIN
from cfm.preparation.models import PrepareJob
from cfm.registry.models import Registration, SourceKind, Status
from cfm.registry.texts import filesize

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated")]
JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}


@pytest.fixture
def huge_reg(alice, tmp_path):
    """A `.bin`-only model from the Hub whose pickles (sparse files) are larger
    than the disk's free space: Prepare would need them twice over."""
    folder = tmp_path / "huge"
    folder.mkdir()
    write_json(folder / "config.json", tiny_llama_config())
    write_json(folder / "tokenizer.json", {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0},
                                                                        "unk_token": "a"}})
    free = shutil.disk_usage(tmp_path).free
    with open(folder / "pytorch_model.bin", "wb") as fh:
        fh.truncate(free // 2 + 10**9)
    report = inspect(str(folder)).to_dict()
    assert report["preparation"] == ["convert_weights_to_safetensors"] and report["files_bytes"] == free // 2 + 10**9
    return Registration.objects.create(account=alice.account, created_by=alice.user, source_kind=SourceKind.HUB,
                                       source="org/huge", status=Status.DONE, report=report)


def test_the_page_says_what_prepare_downloads_and_the_disk_it_needs(client, alice, tmp_path):
    reg = archive_registration(alice, make_ttm(tmp_path / "ttm"), tmp_path)
    download = reg.report["files"]["needed_bytes"]
    assert download == sum((tmp_path / "ttm" / n).stat().st_size for n in ("config.json", "model.safetensors"))
    client.force_login(alice.user)
    html = client.get(reverse("prepare", args=[reg.pk])).content.decode()
    assert f"Prepare will download about {filesize(download)}" in html
    # add_tsfm_config rewrites no weights: the download and the margin
    assert f"It needs about {filesize(download + DISK_MARGIN)} of disk" in html
    assert "prepare-disk-full" not in html and 'id="prepare-start" disabled' not in html
    ja = client.get(reverse("prepare", args=[reg.pk]), **JA).content.decode()
    assert f"約 {filesize(download)} をダウンロード" in ja
    client.post(reverse("prepare", args=[reg.pk]))
    assert PrepareJob.objects.filter(registration=reg).count() == 1


def test_too_little_disk_refuses_to_start_in_the_page_and_the_api(client, alice, huge_reg):
    listed = huge_reg.report["files_bytes"]
    client.force_login(alice.user)
    url = reverse("prepare", args=[huge_reg.pk])
    html = client.get(url).content.decode()
    # the download and its converted copy, plus the margin
    needed = huge_reg.report["files"]["needed_bytes"] + listed + DISK_MARGIN
    assert f"It needs about {filesize(needed)} of disk" in html
    assert 'id="prepare-disk-full"' in html and "Not enough disk space on the server" in html
    assert 'id="prepare-start" disabled' in html
    ja = client.get(url, **JA).content.decode()
    assert "サーバーの空きディスク容量が足りません" in ja and 'id="prepare-start" disabled' in ja

    answer = client.post(url, follow=True)
    assert answer.status_code == 200
    assert "has not enough free disk to prepare this model" in answer.content.decode()
    assert not PrepareJob.objects.exists()

    api = client.post(f"/api/v1/registrations/{huge_reg.pk}/prepare", content_type="application/json",
                      **alice.auth)
    assert api.status_code == 409 and api.json()["error"]["code"] == "disk_full"
    assert filesize(needed) in api.json()["error"]["message"]
    assert not PrepareJob.objects.exists()


def test_an_earlier_report_without_the_file_list_shows_no_figures(client, alice, tmp_path):
    reg = archive_registration(alice, make_ttm(tmp_path / "ttm"), tmp_path)
    reg.report["files"].pop("needed_bytes")
    reg.save()
    client.force_login(alice.user)
    html = client.get(reverse("prepare", args=[reg.pk])).content.decode()
    assert 'id="prepare-disk"' not in html and 'id="prepare-start" disabled' not in html
