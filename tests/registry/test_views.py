"""The registration pages: register (Hub id, folder snapshot, archive), the
registration page and its polled fragment, the report JSON and the actions.
Three users everywhere: the owner, a member of another account (404), and an
anonymous visitor (sent to log in)."""
from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import pytest
from actors import member
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from modelfactory import LLAMA3_8B, llama_tensors, make_model, make_tiny_real

from cfm.accounts.models import Account, Membership, Role
from cfm.inspection import inspect
from cfm.registry.models import Registration, SourceKind, Status

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner():
    return member("alice")


@pytest.fixture
def stranger():
    return member("bob")


def _registration(account, user, **kw) -> Registration:
    fields = {"source_kind": SourceKind.HUB, "source": "org/model", "status": Status.QUEUED}
    fields.update(kw)
    return Registration.objects.create(account=account, created_by=user, **fields)


@pytest.fixture
def done(owner, tmp_path) -> Registration:
    """A finished registration with a real report: an 8B llama whose first
    shard's header says format "mlx" (one failed check, with a remedy)."""
    folder = make_model(tmp_path / "m", LLAMA3_8B, llama_tensors(LLAMA3_8B), shards=2, metadata={"format": "mlx"})
    report = inspect(str(folder)).to_dict()
    return _registration(owner[1], owner[0], status=Status.DONE, report=report, finished_at=timezone.now())


def _login(client, user):
    client.force_login(user)
    return client


VIEWS = [
    ("registration", "get", 200),
    ("registration_live", "get", 200),
    ("registration_report_json", "get", 200),
    ("registration_rerun", "post", 302),
    ("registration_cancel", "post", 302),
    ("registration_delete", "post", 302),
]


@pytest.mark.parametrize("name,method,ok", VIEWS)
def test_every_registration_view_answers_owner_hides_from_stranger_and_anonymous(client, owner, stranger, done,
                                                                                name, method, ok):
    url = reverse(name, args=[done.pk])
    anon = getattr(client, method)(url)
    assert anon.status_code == 302 and reverse("login") in anon["Location"]
    _login(client, stranger[0])
    assert getattr(client, method)(url).status_code == 404
    assert Registration.objects.filter(pk=done.pk).exists()  # the stranger changed nothing
    _login(client, owner[0])
    assert getattr(client, method)(url).status_code == ok


def test_an_id_that_does_not_exist_is_a_404_like_a_strangers(client, owner):
    _login(client, owner[0])
    assert client.get(reverse("registration", args=[987654])).status_code == 404


def test_register_page_needs_login_and_offers_three_ways_in(client, owner):
    assert client.get(reverse("register")).status_code == 302
    html = _login(client, owner[0]).get(reverse("register")).content.decode()
    for marker in ('id="panel-hub"', 'id="panel-folder"', 'id="panel-archive"', "webkitdirectory",
                   'type="password"', 'autocomplete="off"', 'role="tablist"'):
        assert marker in html


def test_registering_a_repo_id_creates_the_job_and_shows_its_page(client, owner):
    _login(client, owner[0])
    r = client.post(reverse("register"), {"kind": "hub", "account": owner[1].pk, "hub-source": "org/model",
                                          "hub-revision": "main", "hub-token": "hf_secret"})
    reg = Registration.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("registration", args=[reg.pk])
    assert (reg.source, reg.revision, reg.status) == ("org/model", "main", Status.QUEUED)
    assert reg.token_encrypted and "hf_secret" not in reg.token_encrypted
    page = client.get(r["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' in page and "Waiting for a worker" in page


@pytest.mark.parametrize("bad", ["not a repo", "org/na me", "../etc/passwd", "a/b/c", "org--x/y"])
def test_a_malformed_repo_id_is_refused_with_an_accessible_error(client, owner, bad):
    _login(client, owner[0])
    r = client.post(reverse("register"), {"kind": "hub", "account": owner[1].pk, "hub-source": bad})
    html = r.content.decode()
    assert r.status_code == 400 and not Registration.objects.exists()
    assert 'aria-invalid="true"' in html and 'id="id_hub-source_error"' in html
    assert "id_hub-source_error" in html.split('name="hub-source"')[1].split(">")[0]  # aria-describedby


def test_registering_the_same_repo_twice_links_to_the_existing_one(client, owner):
    _login(client, owner[0])
    existing = _registration(owner[1], owner[0], source="org/model", revision="main")
    r = client.post(reverse("register"), {"kind": "hub", "account": owner[1].pk, "hub-source": "hf://org/model"})
    assert r.status_code == 200 and Registration.objects.count() == 1
    assert reverse("registration", args=[existing.pk]) in r.content.decode()


def test_a_revision_left_empty_on_the_form_is_main_like_the_api(client, owner):
    _login(client, owner[0])
    first = client.post(reverse("register"), {"kind": "hub", "account": owner[1].pk, "hub-source": "org/model",
                                              "hub-revision": ""})
    assert first.status_code == 302 and Registration.objects.get().revision == "main"
    again = client.post(reverse("register"), {"kind": "hub", "account": owner[1].pk, "hub-source": "org/model",
                                              "hub-revision": "main"})
    assert again.status_code == 200 and Registration.objects.count() == 1


def test_a_lite_account_sees_why_and_cannot_register(client):
    user, account = member("carol", plan="lite")
    _login(client, user)
    html = client.get(reverse("register")).content.decode()
    assert 'data-code="plan_not_allowed"' in html and "Standard plan" in html
    assert html.count("disabled") >= 3
    r = client.post(reverse("register"), {"kind": "hub", "account": account.pk, "hub-source": "org/model"})
    assert r.status_code == 403 and not Registration.objects.exists()


def test_registering_into_another_accounts_id_is_a_404(client, owner, stranger):
    _login(client, owner[0])
    r = client.post(reverse("register"), {"kind": "hub", "account": stranger[1].pk, "hub-source": "org/model"})
    assert r.status_code == 404 and not Registration.objects.exists()


def _folder_post(folder: Path, account_id: int) -> dict:
    """What static/js/folder-upload.js sends: the manifest, small files whole,
    each safetensors file's 8-byte length + header, nothing else."""
    data: dict = {"kind": "folder", "account": account_id, "folder": folder.name}
    manifest = []
    for i, path in enumerate(sorted(p for p in folder.rglob("*") if p.is_file())):
        rel, size = path.relative_to(folder).as_posix(), path.stat().st_size
        part = None
        if rel.endswith(".safetensors"):
            with open(path, "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                fh.seek(0)
                part, blob = f"p{i}", fh.read(8 + n)
        elif rel.endswith(".json"):
            part, blob = f"p{i}", path.read_bytes()
        if part:
            data[part] = SimpleUploadedFile(path.name, blob)
        manifest.append({"path": rel, "size": size, "part": part})
    data["manifest"] = json.dumps(manifest)
    return data


def test_a_folder_registers_from_headers_and_small_files_only(client, owner, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    folder = make_model(tmp_path / "llama-8b", LLAMA3_8B, llama_tensors(LLAMA3_8B), shards=2)  # 16 GB, sparse
    _login(client, owner[0])
    r = client.post(reverse("register"), _folder_post(folder, owner[1].pk), HTTP_X_REQUESTED_WITH="fetch")
    assert r.status_code == 201, r.content
    reg = Registration.objects.get(pk=r.json()["id"])
    assert r.json()["url"] == reverse("registration", args=[reg.pk])
    assert (reg.source_kind, reg.source) == (SourceKind.FOLDER, "llama-8b")
    stored = sum(p.stat().st_size for p in Path(reg.upload_path).parent.rglob("*") if p.is_file())
    assert stored < 200_000  # of a 16 GB folder


def test_an_empty_folder_is_refused(client, owner):
    _login(client, owner[0])
    r = client.post(reverse("register"), {"kind": "folder", "account": owner[1].pk, "folder": "x", "manifest": "[]"},
                    HTTP_X_REQUESTED_WITH="fetch")
    assert r.status_code == 400 and "empty" in json.dumps(r.json()["errors"])


def test_a_file_that_is_not_an_archive_is_refused(client, owner):
    _login(client, owner[0])
    upload = SimpleUploadedFile("model.zip", b"just some text, not a zip")
    r = client.post(reverse("register"), {"kind": "archive", "account": owner[1].pk, "archive-archive": upload})
    assert r.status_code == 400 and "not a .zip" in r.content.decode()
    assert 'aria-invalid="true"' in r.content.decode() and not Registration.objects.exists()


def test_an_archive_over_the_upload_limit_is_refused(client, owner):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", "{}" + " " * 4000)
    _login(client, owner[0])
    with override_settings(CFM_UPLOAD_MAX_BYTES=1024):
        r = client.post(reverse("register"), {"kind": "archive", "account": owner[1].pk,
                                              "archive-archive": SimpleUploadedFile("m.zip", buf.getvalue())})
    assert r.status_code == 400 and "limited to" in r.content.decode()


def test_an_archive_registers(client, owner, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    folder = make_tiny_real(tmp_path / "tiny")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in folder.iterdir():
            z.write(p, f"tiny/{p.name}")
    _login(client, owner[0])
    r = client.post(reverse("register"), {"kind": "archive", "account": owner[1].pk,
                                          "archive-archive": SimpleUploadedFile("tiny.zip", buf.getvalue())})
    reg = Registration.objects.get()
    assert r.status_code == 302 and reg.source_kind == SourceKind.ARCHIVE and reg.source == "tiny.zip"


def test_the_fragment_polls_while_the_job_runs_and_stops_once_it_ended(client, owner, done):
    _login(client, owner[0])
    running = _registration(owner[1], owner[0], status=Status.INSPECTING, progress_step="reading_headers",
                            progress_done=1, progress_total=4, bytes_done=20_000, bytes_total=16_000_000_000)
    html = client.get(reverse("registration_live", args=[running.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in html and 'aria-valuenow="25"' in html
    assert "Reading safetensors headers" in html and 'aria-current="step"' in html
    html = client.get(reverse("registration_live", args=[done.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html and 'id="report"' in html
    assert 'id="live-announce" hx-swap-oob="innerHTML"' in html  # screen readers hear the end once


def test_the_report_shows_every_check_the_remedy_the_recommendation_and_limitations(client, owner, done):
    html = _login(client, owner[0]).get(reverse("registration", args=[done.pk])).content.decode()
    assert html.count('data-check="') == 16  # the contract's fifteen and the second wave's context
    assert 'data-check="safetensors_metadata" data-status="fail"' in html
    assert "fix_safetensors_metadata" in html and "watsonx-cfm-caikit-1.1" in html
    assert "cannot be tuned" in html and "watsonx.governance" in html
    assert 'class="bar-chart"' in html and "BF16" in html
    assert reverse("registration_report_json", args=[done.pk]) in html
    assert "never the 16.1 GB of weights" in html  # how little was read to decide


def test_the_report_reads_in_japanese(client, owner, done):
    _login(client, owner[0])
    html = client.get(reverse("registration", args=[done.pk]), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert 'lang="ja"' in html
    assert "デプロイ" in html  # the verdict and the checks, translated


def test_a_failed_registration_shows_its_code_a_clear_message_and_rerun(client, owner):
    reg = _registration(owner[1], owner[0], status=Status.FAILED, error_code="repo_not_found",
                        error_message="404 for org/model")
    html = _login(client, owner[0]).get(reverse("registration", args=[reg.pk])).content.decode()
    assert "repo_not_found" in html and "The Hub has no repository of that name." in html
    assert reverse("registration_rerun", args=[reg.pk]) in html and "Traceback" not in html
    client.post(reverse("registration_rerun", args=[reg.pk]))
    reg.refresh_from_db()
    assert reg.status == Status.QUEUED and reg.error_code == ""


def test_cancel_stops_a_running_job_and_delete_removes_it(client, owner):
    from cfm.jobs.models import Job

    reg = _registration(owner[1], owner[0], status=Status.FETCHING)
    run = Job.objects.create(kind="inspection", subject_id=reg.pk, status="running", claim="c1")  # a worker's
    Registration.objects.filter(pk=reg.pk).update(job=run)
    _login(client, owner[0])
    assert reverse("registration_cancel", args=[reg.pk]) in client.get(reverse("registration", args=[reg.pk])
                                                                       ).content.decode()
    client.post(reverse("registration_cancel", args=[reg.pk]))
    reg.refresh_from_db()
    assert (reg.status, reg.error_code) == (Status.FAILED, "cancelled")
    run.refresh_from_db()
    assert (run.status, run.claim) == ("cancelled", "")  # the worker is fenced out
    r = client.post(reverse("registration_delete", args=[reg.pk]))
    assert r["Location"] == reverse("dashboard") and not Registration.objects.exists()


def test_a_cancelled_rerun_keeps_the_previous_report_shown_as_such_without_actions(client, owner, done):
    Registration.objects.filter(pk=done.pk).update(report={**done.report, "deployable": True})
    _login(client, owner[0])
    client.post(reverse("registration_rerun", args=[done.pk]))
    client.post(reverse("registration_cancel", args=[done.pk]))
    done.refresh_from_db()
    assert (done.status, done.error_code) == (Status.FAILED, "cancelled") and done.report["deployable"] is True
    html = client.get(reverse("registration", args=[done.pk])).content.decode()
    assert 'id="previous-report"' in html and 'id="report"' in html
    assert reverse("quota:deploy", args=[done.pk]) not in html  # deploying needs a current report
    assert client.get(reverse("registration_report_json", args=[done.pk])).status_code == 200


def test_the_report_json_is_the_contract(client, owner, done):
    r = _login(client, owner[0]).get(reverse("registration_report_json", args=[done.pk]))
    data = json.loads(r.content)
    assert r["Content-Disposition"].startswith("attachment;")
    assert data["schema"] == 1 and data["deployable"] is False and len(data["checks"]) == 16


def test_no_report_json_before_the_job_is_done(client, owner):
    reg = _registration(owner[1], owner[0])
    assert _login(client, owner[0]).get(reverse("registration_report_json", args=[reg.pk])).status_code == 404


def test_the_stored_token_can_be_forgotten_and_a_new_one_given_on_rerun(client, owner, stranger):
    from cfm.registry.secrets import token_decrypt

    reg = _registration(owner[1], owner[0], status=Status.FAILED, error_code="access_denied",
                        token_encrypted="")
    _login(client, owner[0])
    html = client.get(reverse("registration", args=[reg.pk])).content.decode()
    assert 'name="token"' in html and 'autocomplete="off"' in html
    client.post(reverse("registration_rerun", args=[reg.pk]), {"token": "hf_newtoken"})
    reg.refresh_from_db()
    assert reg.status == Status.QUEUED and token_decrypt(reg.token_encrypted) == "hf_newtoken"
    url = reverse("registration_forget_token", args=[reg.pk])
    assert _login(client, stranger[0]).post(url).status_code == 404
    assert client.logout() is None and client.post(url).status_code == 302
    _login(client, owner[0]).post(url)
    reg.refresh_from_db()
    assert reg.token_encrypted == ""


def test_a_member_of_several_accounts_picks_one_and_a_lite_one_explains_itself(client, owner):
    user, standard = owner
    lite = Account.objects.create(name="Side project", plan="lite")
    Membership.objects.create(account=lite, user=user, role=Role.MEMBER)
    _login(client, user)
    html = client.get(reverse("register")).content.decode()
    assert 'id="account-select"' in html and f'value="{standard.pk}" selected' in html
    assert "plan_not_allowed" not in html
    html = client.get(reverse("register") + f"?account={lite.pk}&via=folder").content.decode()
    assert 'data-code="plan_not_allowed"' in html and 'aria-selected="true" data-kind="folder"' in html


def test_the_archive_script_gets_its_errors_as_json(client, owner):
    _login(client, owner[0])
    upload = SimpleUploadedFile("model.tar.gz", b"plain text")
    r = client.post(reverse("register"), {"kind": "archive", "account": owner[1].pk, "archive-archive": upload},
                    HTTP_X_REQUESTED_WITH="fetch")
    assert r.status_code == 400 and "not a .zip" in r.json()["errors"]["archive"][0]
