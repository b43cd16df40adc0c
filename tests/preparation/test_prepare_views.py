"""The Prepare page and its job, end to end through the views and the
worker's run (no torch needed: a tinytimemixer and a Llama 3.1 config
edit). Three users: the owner, a member of another account (404), and an
anonymous visitor (sent to log in)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from jobrun import run_prepare
from prep_builders import archive_registration, make_ttm, tiny_llama_config, write_json
from safetensors.numpy import save_file
from worker_support import own_broker  # noqa: F401

from cfm.inspection import inspect
from cfm.jobs import runtime
from cfm.preparation import jobs
from cfm.preparation.models import PrepareJob, PrepareStatus
from cfm.registry.models import Registration, SourceKind, Status

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated")]


@pytest.fixture
def llama31_reg(alice, tmp_path):
    folder = tmp_path / "llama31"
    folder.mkdir()
    save_file({"model.norm.weight": np.ones(16, dtype=np.float16)}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    write_json(folder / "config.json", tiny_llama_config(num_hidden_layers=0, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}))
    write_json(folder / "tokenizer.json", {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0},
                                                                        "unk_token": "a"}})
    return archive_registration(alice, folder, tmp_path)


def test_prepare_page_is_for_members_only(client, alice, bob, ttm_reg):
    url = reverse("prepare", args=[ttm_reg.pk])
    client.force_login(alice.user)
    page = client.get(url)
    assert page.status_code == 200
    assert b'id="prepare-start"' in page.content and b"add_tsfm_config" in page.content
    client.force_login(bob.user)
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert not PrepareJob.objects.exists()
    client.logout()
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]


def test_prepare_runs_and_the_page_shows_both_reports_and_the_stored_folder(client, alice, bob, ttm_reg, tmp_path):
    client.force_login(alice.user)
    response = client.post(reverse("prepare", args=[ttm_reg.pk]))
    assert response.status_code == 302
    job = PrepareJob.objects.get()
    assert job.status == PrepareStatus.QUEUED and job.steps == ["add_tsfm_config"]
    live_url = reverse("prepare_live", args=[ttm_reg.pk, job.pk])
    assert b"hx-trigger" in client.get(live_url).content  # polls while queued

    assert run_prepare(job.pk) == "done"
    assert run_prepare(job.pk) == "skipped"  # a second delivery finds nothing to do

    job.refresh_from_db()
    assert job.new_report["deployable"] and job.new_report["preparation"] == []
    stored = Path(job.storage_location)
    assert stored == (tmp_path / "media" / "prepared" / str(alice.account.pk) / str(ttm_reg.pk) / "1").resolve()
    assert (stored / "tsfm_config.json").is_file() and (stored / "SHA256SUMS").is_file()
    assert set(job.manifest) == {"config.json", "model.safetensors", "tsfm_config.json"}
    assert not jobs.work_dir_for(ttm_reg.pk).exists()

    live = client.get(live_url)
    assert b"hx-trigger" not in live.content  # polling stops once the job has ended
    page = client.get(reverse("prepare", args=[ttm_reg.pk])).content.decode()
    assert 'id="compare-table"' in page and reverse("prepared_download", args=[ttm_reg.pk, job.pk]) in page
    assert job.storage_location not in page  # where it is stored is the server's business: the page offers a zip
    assert "not deployable" in page and 'id="new-verdict"' in page

    client.force_login(bob.user)
    assert client.get(live_url).status_code == 404
    assert client.post(reverse("prepare_cancel", args=[ttm_reg.pk, job.pk])).status_code == 404


def test_cancelling_a_queued_job_ends_it_and_the_worker_skips_it(client, alice, ttm_reg):
    client.force_login(alice.user)
    client.post(reverse("prepare", args=[ttm_reg.pk]))
    job = PrepareJob.objects.get()
    client.post(reverse("prepare_cancel", args=[ttm_reg.pk, job.pk]))
    job.refresh_from_db()
    assert job.status == PrepareStatus.CANCELLED
    assert run_prepare(job.pk) == "skipped"
    assert "cancelled" in client.get(reverse("prepare", args=[ttm_reg.pk])).content.decode()


def test_rope_edit_is_shown_as_a_diff_and_applied_only_when_accepted(client, alice, bob, llama31_reg):
    client.force_login(alice.user)
    client.post(reverse("prepare", args=[llama31_reg.pk]))
    job = PrepareJob.objects.get()
    assert run_prepare(job.pk) == "review"
    page = client.get(reverse("prepare", args=[llama31_reg.pk])).content.decode()
    assert 'id="rope-review"' in page and "diff-add" in page and "dynamic" in page
    assert "original context length" in page

    review_url = reverse("prepare_review", args=[llama31_reg.pk, job.pk])
    client.force_login(bob.user)
    assert client.post(review_url, {"accept": "1"}).status_code == 404
    client.force_login(alice.user)
    client.post(review_url, {"accept": "1"})
    job.refresh_from_db()
    assert job.status == PrepareStatus.QUEUED and job.rope_accept is True

    assert run_prepare(job.pk) == "done"
    job.refresh_from_db()
    config = json.loads((Path(job.storage_location) / "config.json").read_text())
    assert config["rope_scaling"] == {"type": "dynamic", "factor": 8.0}
    assert job.new_report["preparation"] == []


def test_without_the_convert_extra_the_page_says_what_to_install(client, alice, ttm_reg, monkeypatch):
    import cfm.preparation.extras as extras

    report = dict(ttm_reg.report, preparation=["convert_weights_to_safetensors"])
    Registration.objects.filter(pk=ttm_reg.pk).update(report=report)
    monkeypatch.setattr(extras, "_present", lambda module: module != "torch")
    client.force_login(alice.user)
    page = client.get(reverse("prepare", args=[ttm_reg.pk])).content.decode()
    assert 'id="prepare-missing"' in page and "pip install &#x27;cfm[convert]&#x27;" in page
    assert 'id="prepare-start" disabled' in page
    client.post(reverse("prepare", args=[ttm_reg.pk]))
    assert not PrepareJob.objects.exists()


@pytest.mark.django_db(transaction=True)  # the heartbeat thread's own connection must see the job row
@pytest.mark.usefixtures("own_broker")  # run here, not by a session worker
def test_a_hub_registration_is_prepared_with_its_stored_token(client, alice, hub_server, settings, tmp_path):
    from cfm.registry.secrets import token_encrypt

    folder = make_ttm(tmp_path / "ttm")
    hub_server.add_repo("ibm/private-ttm", folder, private=True, token="hf_secret_token")
    settings.HF_ENDPOINT = hub_server.url
    registration = Registration.objects.create(
        account=alice.account, created_by=alice.user, source_kind=SourceKind.HUB, source="ibm/private-ttm",
        status=Status.DONE, report=inspect(str(folder)).to_dict(), token_encrypted=token_encrypt("hf_secret_token"))
    client.force_login(alice.user)
    client.post(reverse("prepare", args=[registration.pk]))
    job = PrepareJob.objects.get()
    assert run_prepare(job.pk) == "done"
    job.refresh_from_db()
    assert job.manifest["model.safetensors"]["sha256"]
    assert (Path(job.storage_location) / "tsfm_config.json").is_file()


def _folder_registration(actor, tmp_path: Path, *, weights_sent: int) -> Registration:
    """A folder upload: config.json whole, and `weights_sent` bytes of a
    model.safetensors of 1000 bytes (the browser sends a big file's header)."""
    upload = tmp_path / "upload"
    write_json(upload / "files" / "config.json", {"model_type": "tinytimemixer"})
    (upload / "files" / "model.safetensors").write_bytes(b"\0" * weights_sent)
    config_size = (upload / "files" / "config.json").stat().st_size
    write_json(upload / "manifest.json", {"name": "ttm", "sizes": {"config.json": config_size,
                                                                   "model.safetensors": 1000},
                                          "stored": {"config.json": config_size, "model.safetensors": weights_sent}})
    return Registration.objects.create(
        account=actor.account, created_by=actor.user, source_kind=SourceKind.FOLDER, source="ttm",
        status=Status.DONE, upload_path=str(upload / "manifest.json"),
        report={"deployable": False, "preparation": ["add_tsfm_config"], "checks": []})


def test_a_folder_upload_of_headers_only_is_not_offered_prepare_and_says_what_to_do(client, alice, tmp_path):
    registration = _folder_registration(alice, tmp_path, weights_sent=100)
    client.force_login(alice.user)
    page = client.get(reverse("prepare", args=[registration.pk])).content.decode()
    assert 'id="prepare-start"' not in page and 'id="prepare-unavailable"' in page
    notice = page.split('id="prepare-unavailable"')[1].split("</div>")[0]
    assert "model.safetensors" in notice and "as an archive" in notice and "from the Hub" in notice
    assert f"{reverse('register')}?via=archive&amp;account={alice.account.pk}" in notice
    assert f"{reverse('register')}?via=hub&amp;account={alice.account.pk}" in notice

    # A request made anyway (an old page, the API) is refused with the same reason, and no job starts.
    refused = client.post(reverse("prepare", args=[registration.pk]), follow=True).content.decode()
    assert not PrepareJob.objects.exists() and "holds only part of model.safetensors" in refused
    api = client.post(f"/api/v1/registrations/{registration.pk}/prepare", content_type="application/json",
                      HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    assert api.status_code == 409 and api.json()["error"]["code"] == "unsupported"
    assert not PrepareJob.objects.exists()

    # The worker refuses such a source too, whatever queued it.
    job = PrepareJob.objects.create(registration=registration, account=alice.account, created_by=alice.user,
                                    steps=["add_tsfm_config"])
    runtime.submit("prepare", subject_id=job.pk)
    assert run_prepare(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error_code == "unsupported" and "model.safetensors" in job.error_message


def test_a_folder_upload_that_holds_the_whole_weights_is_offered_prepare(client, alice, tmp_path):
    registration = _folder_registration(alice, tmp_path, weights_sent=1000)
    client.force_login(alice.user)
    page = client.get(reverse("prepare", args=[registration.pk])).content.decode()
    assert 'id="prepare-start"' in page and 'id="prepare-start" disabled' not in page
    assert 'id="prepare-unavailable"' not in page


def test_the_report_of_a_headers_only_folder_upload_offers_no_prepare_and_links_to_why(client, alice, bob, tmp_path):
    registration = _folder_registration(alice, tmp_path, weights_sent=100)
    prepare_url = reverse("prepare", args=[registration.pk])
    client.force_login(alice.user)
    for url in (reverse("registration", args=[registration.pk]), reverse("registration_live", args=[registration.pk])):
        page = client.get(url).content.decode()
        assert "Prepare the model" not in page and f'href="{prepare_url}"' not in page
        note = page.split('id="prepare-unavailable-note"')[1].split("</p>")[0]
        assert "model.safetensors" in note and f'href="{prepare_url}#prepare-unavailable"' in note
    # The link leads to the Prepare page's explanation, which has that anchor.
    assert 'id="prepare-unavailable"' in client.get(prepare_url).content.decode()
    client.force_login(bob.user)
    assert client.get(reverse("registration", args=[registration.pk])).status_code == 404


def test_the_report_of_a_folder_upload_with_its_weights_offers_prepare(client, alice, tmp_path):
    registration = _folder_registration(alice, tmp_path, weights_sent=1000)
    client.force_login(alice.user)
    page = client.get(reverse("registration", args=[registration.pk])).content.decode()
    assert "Prepare the model" in page and f'href="{reverse("prepare", args=[registration.pk])}"' in page
    assert 'id="prepare-unavailable-note"' not in page


def test_the_job_heading_counts_the_runs_of_this_registration(client, alice, ttm_reg, llama31_reg):
    for _ in range(3):  # other registrations' jobs take the first ids
        PrepareJob.objects.create(registration=llama31_reg, account=alice.account, steps=["fix_rope_scaling"],
                                  status=PrepareStatus.DONE)
    client.force_login(alice.user)
    client.post(reverse("prepare", args=[ttm_reg.pk]))
    first = PrepareJob.objects.filter(registration=ttm_reg).get()
    page = client.get(reverse("prepare", args=[ttm_reg.pk])).content.decode()
    assert "Preparation #1" in page and f"Preparation #{first.pk}" not in page
    PrepareJob.objects.filter(pk=first.pk).update(status=PrepareStatus.FAILED)
    client.post(reverse("prepare", args=[ttm_reg.pk]))
    live = reverse("prepare_live", args=[ttm_reg.pk, PrepareJob.objects.filter(registration=ttm_reg).first().pk])
    assert "Preparation #2" in client.get(live).content.decode()


@pytest.mark.parametrize("status, state", [(PrepareStatus.FAILED, "failed"), (PrepareStatus.CANCELLED, "cancelled")])
def test_the_stage_a_job_ended_in_is_shown_as_failed_or_cancelled_not_as_current(client, alice, ttm_reg, status,
                                                                                  state):
    PrepareJob.objects.create(registration=ttm_reg, account=alice.account, steps=["add_tsfm_config"], status=status,
                              stage="downloading", error_code="download_failed")
    client.force_login(alice.user)
    page = client.get(reverse("prepare", args=[ttm_reg.pk])).content.decode()
    steps = page.split('<ol class="steps">')[1].split("</ol>")[0]
    assert "step-now" not in steps and 'aria-current="step"' not in steps
    assert f'<li class="step step-{state}"><span class="dot" aria-hidden="true"></span>Downloading' in steps
    assert steps.count("step-done") == 1 and steps.count("step-todo") == 3  # listing; tsfm, inspecting, storing


def test_the_convert_step_says_what_the_cast_option_does_not_always_16_bit(client, alice, ttm_reg, monkeypatch):
    import cfm.preparation.extras as extras

    monkeypatch.setattr(extras, "_present", lambda module: True)
    report = dict(ttm_reg.report, preparation=["convert_weights_to_safetensors"])
    Registration.objects.filter(pk=ttm_reg.pk).update(report=report)
    client.force_login(alice.user)
    page = client.get(reverse("prepare", args=[ttm_reg.pk])).content.decode()
    assert "(16-bit)" not in page
    assert 'id="cast_to_16bit"' in page and 'id="cast_to_16bit" checked' not in page
    kept = page.split('id="convert-detail"')[1].split("</span>")[0]
    assert "every tensor keeps its dtype and values" in kept
    cast = page.split('id="convert-detail-cast"')[1].split("</span>")[0]
    assert cast.startswith(" hidden>") and "32-bit floats cast to the config's 16-bit dtype" in cast
    report_page = client.get(reverse("registration", args=[ttm_reg.pk])).content.decode()
    assert "(16-bit)." not in report_page and "every tensor keeps its dtype unless" in report_page
