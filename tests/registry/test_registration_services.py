# ruff: noqa: F811  (pytest fixtures imported from actors are redefined as arguments)
"""registration_create / rerun / cancel / delete and the selectors, without
a worker (the on-commit enqueue does not run inside these tests' transactions)."""
from __future__ import annotations

import io
import os
import struct
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from actors import alice, bob, make_actor, media  # noqa: F401
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from modelfactory import LLAMA3_8B, make_model, make_tiny_real

from cfm.inspection import InspectOptions, inspect, inspect_source
from cfm.inspection.sources import wants_whole
from cfm.jobs.models import Job, JobStatus
from cfm.registry import jobs, selectors
from cfm.registry.models import Registration, Status
from cfm.registry.secrets import token_decrypt
from cfm.registry.services import (
    RegistrationError,
    registration_cancel,
    registration_create,
    registration_delete,
    registration_forget_token,
    registration_rerun,
)


def hub(actor, source="org/model", revision="", token=None):
    return registration_create(account=actor.account, user=actor.user, source_kind="hub", source=source,
                               revision=revision, token=token)


def tar_gz(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    return buf.getvalue()


def snapshot(folder: Path) -> tuple[dict[str, bytes], dict[str, int]]:
    """What the browser sends for a folder: every size, the small files whole
    and each safetensors header."""
    files, sizes = {}, {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        sizes[rel] = path.stat().st_size
        if rel.endswith(".safetensors"):
            with open(path, "rb") as fh:
                head = fh.read(8)
                files[rel] = head + fh.read(struct.unpack("<Q", head)[0])
        elif wants_whole(rel):
            files[rel] = path.read_bytes()
    return files, sizes


# --- Hub repos ---------------------------------------------------------------------------------------------

def test_hub_registration_is_saved_queued_in_the_outbox(alice):
    registration, created = hub(alice, "hf://meta-llama/Llama-3.1-8B", revision="main")
    assert created
    row = Registration.objects.get(pk=registration.pk)
    assert (row.source, row.revision, row.status, row.job.enqueued_at) == ("meta-llama/Llama-3.1-8B", "main",
                                                                           Status.QUEUED, None)
    assert (row.job.kind, row.job.subject_id, row.job.status, row.job.owner) == ("inspection", row.pk, "queued",
                                                                                  alice.user)


def test_hub_registration_without_a_revision_is_stored_as_main_and_is_main(alice):
    first, created = hub(alice, "org/model", revision="")
    again, created_again = hub(alice, "org/model", revision="main")
    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert Registration.objects.get().revision == "main"


def test_the_migration_gives_old_hub_rows_without_a_revision_main_and_leaves_uploads_alone(alice):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("cfm.registry.migrations.0003_hub_revision_main")
    old = Registration.objects.create(account=alice.account, source_kind="hub", source="org/old", revision="")
    tagged = Registration.objects.create(account=alice.account, source_kind="hub", source="org/old", revision="v1")
    upload = Registration.objects.create(account=alice.account, source_kind="archive", source="m.tgz", revision="")
    migration.forwards(apps, None)
    assert [Registration.objects.get(pk=r.pk).revision for r in (old, tagged, upload)] == ["main", "v1", ""]
    assert hub(alice, "org/old") == (Registration.objects.get(pk=old.pk), False)


def test_hub_token_is_encrypted_at_rest(alice):
    registration, _ = hub(alice, token="hf_secretvalue123")
    stored = Registration.objects.get(pk=registration.pk).token_encrypted
    assert stored and "hf_secretvalue123" not in stored
    assert token_decrypt(stored) == "hf_secretvalue123"


def test_same_repo_and_revision_is_a_duplicate(alice):
    first, created = hub(alice, "org/model", "v1")
    again, created_again = hub(alice, "hf://org/model", "v1", token="hf_newtoken")
    other_revision, created_other = hub(alice, "org/model", "v2")
    assert (created, created_again, created_other) == (True, False, True)
    assert again.pk == first.pk and other_revision.pk != first.pk
    # a token given with the duplicate replaces the stored one (e.g. after access_denied)
    assert token_decrypt(Registration.objects.get(pk=first.pk).token_encrypted) == "hf_newtoken"


def test_registering_a_failed_repo_again_retries_it(alice):
    first, _ = hub(alice, "org/gated")
    Registration.objects.filter(pk=first.pk).update(status=Status.FAILED, error_code="access_denied")
    again, created = hub(alice, "org/gated", token="hf_now_with_access")
    row = Registration.objects.get(pk=first.pk)
    assert (created, again.pk, row.status, row.error_code) == (False, first.pk, Status.QUEUED, "")
    assert token_decrypt(row.token_encrypted) == "hf_now_with_access"


def test_same_repo_in_another_account_is_not_a_duplicate(alice, bob):
    a, _ = hub(alice)
    b, created = hub(bob)
    assert created and a.pk != b.pk


@pytest.mark.parametrize("source", ["", "org/", "a/b/c", "org/--x", "org/na..me", "-org/x", "org/x y", "x" * 120])
def test_a_malformed_repo_id_is_refused(alice, source):
    with pytest.raises(RegistrationError) as exc:
        hub(alice, source)
    assert (exc.value.code, exc.value.field, exc.value.status) == ("invalid_source", "source", 400)


def test_a_legacy_single_segment_repo_id_is_accepted(alice):
    registration, _ = hub(alice, "gpt2")
    assert registration.source == "gpt2"


@pytest.mark.parametrize("plan", ["lite", "essentials"])
def test_plans_other_than_standard_are_refused(db, plan):
    carol = make_actor("carol", plan=plan)
    with pytest.raises(RegistrationError) as exc:
        hub(carol)
    assert (exc.value.code, exc.value.status) == ("plan_not_allowed", 403)
    assert not Registration.objects.exists()


def test_registering_into_a_strangers_account_is_not_found(alice, bob):
    with pytest.raises(RegistrationError) as exc:
        registration_create(account=bob.account, user=alice.user, source_kind="hub", source="org/model")
    assert (exc.value.code, exc.value.status) == ("not_found", 404)


# --- archives ------------------------------------------------------------------------------------------------

def test_archive_is_stored_under_its_registration(alice, media, tmp_path):
    data = tar_gz(make_tiny_real(tmp_path / "tiny"))
    registration, created = registration_create(account=alice.account, user=alice.user, source_kind="archive",
                                                source="", archive=SimpleUploadedFile("tiny.tar.gz", data))
    assert created and registration.source == "tiny.tar.gz"
    stored = Path(registration.upload_path)
    assert stored.parent == media / "uploads" / str(registration.pk)
    assert stored.read_bytes() == data
    assert leftovers(media) == []


def test_the_same_archive_twice_is_a_duplicate(alice, media, tmp_path):
    data = tar_gz(make_tiny_real(tmp_path / "tiny"))
    first, _ = registration_create(account=alice.account, user=alice.user, source_kind="archive", source="",
                                   archive=SimpleUploadedFile("a.tar.gz", data))
    again, created = registration_create(account=alice.account, user=alice.user, source_kind="archive", source="",
                                         archive=SimpleUploadedFile("renamed.tar.gz", data))
    assert not created and again.pk == first.pk


@pytest.mark.parametrize("name,data", [("model.rar", b"Rar!\x1a\x07"), ("model.zip", b"not a zip at all"),
                                       ("model.tar.gz", b"plain text"), ("model.tar", b"\x00" * 10)])
def test_a_file_that_is_not_an_archive_is_refused(alice, media, name, data):
    with pytest.raises(RegistrationError) as exc:
        registration_create(account=alice.account, user=alice.user, source_kind="archive", source="",
                            archive=SimpleUploadedFile(name, data))
    assert (exc.value.code, exc.value.field) == ("not_an_archive", "archive")
    assert not Registration.objects.exists()


def leftovers(media: Path) -> list[Path]:
    incoming = media / "uploads" / ".incoming"
    return list(incoming.iterdir()) if incoming.exists() else []


@pytest.mark.parametrize("declared", [True, False], ids=["size-declared", "found-while-streaming"])
def test_an_archive_over_the_upload_limit_is_too_large(alice, media, settings, declared):
    settings.CFM_UPLOAD_MAX_BYTES = 4096
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", os.urandom(8192))
    archive = SimpleUploadedFile("big.zip", buf.getvalue()) if declared else io.BytesIO(buf.getvalue())
    with pytest.raises(RegistrationError) as exc:
        registration_create(account=alice.account, user=alice.user, source_kind="archive", source="big.zip",
                            archive=archive)
    assert (exc.value.code, exc.value.status) == ("too_large", 413)
    assert not Registration.objects.exists()
    assert leftovers(media) == []


def test_an_archive_upload_is_streamed_not_held_in_memory(alice, media):
    size = 24 * 1024 * 1024
    upload = TemporaryUploadedFile("big.tar", "application/x-tar", 0, None)
    with tarfile.open(fileobj=upload.file, mode="w") as tf:
        info = tarfile.TarInfo("m/config.json")
        info.size = size
        tf.addfile(info, io.BytesIO(b"x" * size))
    upload.size = upload.file.tell()
    upload.file.seek(0)
    tracemalloc.start()
    registration, _ = registration_create(account=alice.account, user=alice.user, source_kind="archive",
                                          source="", archive=upload)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert Path(registration.upload_path).stat().st_size == upload.size
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while storing a {upload.size}-byte upload"


# --- folder snapshots ---------------------------------------------------------------------------------------

def test_a_folder_snapshot_inspects_exactly_as_the_whole_folder(alice, media, tmp_path):
    folder = make_model(tmp_path / "llama-3-8b", LLAMA3_8B, shards=4)  # sparse: 16 GB on paper
    files, sizes = snapshot(folder)
    registration, created = registration_create(account=alice.account, user=alice.user, source_kind="folder",
                                                source="llama-3-8b", folder_files=files, folder_sizes=sizes)
    assert created
    stored = sum(p.stat().st_size for p in (media / "uploads" / str(registration.pk)).rglob("*") if p.is_file())
    assert stored < 100_000
    from_snapshot = inspect_source(jobs.open_snapshot(registration, Path(registration.upload_path)),
                                   InspectOptions()).to_dict()
    direct = inspect(str(folder)).to_dict()
    for report in (from_snapshot, direct):
        report.pop("source")
        report.pop("files")
    assert from_snapshot == direct
    assert from_snapshot["parameters"] > 8e9 and from_snapshot["configuration"] == "small"


def test_the_same_folder_twice_is_a_duplicate(alice, media, tmp_path):
    files, sizes = snapshot(make_tiny_real(tmp_path / "tiny"))
    first, _ = registration_create(account=alice.account, user=alice.user, source_kind="folder", source="tiny",
                                   folder_files=files, folder_sizes=sizes)
    again, created = registration_create(account=alice.account, user=alice.user, source_kind="folder",
                                         source="tiny", folder_files=files, folder_sizes=sizes)
    assert not created and again.pk == first.pk


def test_an_empty_folder_is_refused(alice, media):
    with pytest.raises(RegistrationError) as exc:
        registration_create(account=alice.account, user=alice.user, source_kind="folder", source="x",
                            folder_files={}, folder_sizes={})
    assert exc.value.code == "empty_folder"


@pytest.mark.parametrize("mutate", ["header_cut", "config_missing", "traversal", "unlisted", "negative_size",
                                    "file_and_folder", "long_name"])
def test_an_incomplete_or_unsafe_folder_snapshot_is_refused(alice, media, tmp_path, mutate):
    files, sizes = snapshot(make_tiny_real(tmp_path / "tiny"))
    if mutate == "header_cut":
        files["model.safetensors"] = files["model.safetensors"][:20]
    elif mutate == "config_missing":
        del files["config.json"]
    elif mutate == "traversal":
        sizes["../etc/passwd"] = 10
        files["../etc/passwd"] = b"x" * 10
    elif mutate == "unlisted":
        files["extra.json"] = b"{}"
    elif mutate == "file_and_folder":
        sizes["config.json/inner.json"] = 2
        files["config.json/inner.json"] = b"{}"
    elif mutate == "long_name":
        sizes["x" * 300 + ".json"] = 2
        files["x" * 300 + ".json"] = b"{}"
    else:
        sizes["config.json"] = -1
    with pytest.raises(RegistrationError) as exc:
        registration_create(account=alice.account, user=alice.user, source_kind="folder", source="tiny",
                            folder_files=files, folder_sizes=sizes)
    assert exc.value.code == "invalid_folder"
    assert not Registration.objects.exists()


# --- re-run, cancel, delete ---------------------------------------------------------------------------------------

def _job_state(registration, job_status, **job_fields):
    """The latest run in a given state, and the registration's mirror of it, as a worker would leave them."""
    Job.objects.filter(pk=registration.job_id).update(status=job_status, **job_fields)
    Registration.objects.filter(pk=registration.pk).update(
        status={"running": Status.INSPECTING}.get(job_status, job_status),
        error_code=job_fields.get("error_code", ""))


def test_rerun_of_a_failed_job_queues_it_afresh_and_keeps_the_failed_run(alice):
    registration, _ = hub(alice)
    first_run = registration.job_id
    _job_state(registration, JobStatus.FAILED, error_code="hub_unavailable", attempts=3)
    Registration.objects.filter(pk=registration.pk).update(report={"x": 1})
    row = registration_rerun(registration=registration, user=alice.user)
    assert (row.status, row.error_code, row.attempts, row.job.enqueued_at) == (Status.QUEUED, "", 0, None)
    assert row.report == {"x": 1}  # kept until a new report replaces it
    # one row per run: the failed one is history, the new one is the registration's
    assert row.job_id != first_run
    runs = Job.objects.filter(kind="inspection", subject_id=row.pk).order_by("id")
    assert [(j.status, j.error_code, j.attempts) for j in runs] == [("failed", "hub_unavailable", 3),
                                                                     ("queued", "", 0)]


def test_rerun_of_a_running_job_changes_nothing(alice):
    registration, _ = hub(alice)
    _job_state(registration, JobStatus.RUNNING, claim="c1", attempts=1)
    row = registration_rerun(registration=registration, user=alice.user)
    assert (row.status, row.job.claim, row.attempts) == (Status.INSPECTING, "c1", 1)
    assert Job.objects.filter(subject_id=row.pk).count() == 1


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING])
def test_cancel_stops_a_queued_or_running_job(alice, status):
    registration, _ = hub(alice)
    _job_state(registration, status, claim="c1")
    row = registration_cancel(registration=registration, user=alice.user)
    row.refresh_from_db()
    assert (row.status, row.error_code, row.job.claim) == (Status.FAILED, "cancelled", "")
    assert (row.job.status, row.error_message) == ("cancelled", "Cancelled by alice.")


def test_cancel_leaves_a_finished_job_alone(alice):
    registration, _ = hub(alice)
    Registration.objects.filter(pk=registration.pk).update(status=Status.DONE, report={"deployable": True})
    assert registration_cancel(registration=registration, user=alice.user).status == Status.DONE


def test_strangers_cannot_rerun_cancel_or_delete(alice, bob):
    registration, _ = hub(alice)
    for action in (registration_rerun, registration_cancel, registration_delete, registration_forget_token):
        with pytest.raises(RegistrationError) as exc:
            action(registration=registration, user=bob.user)
        assert exc.value.status == 404
    assert Registration.objects.filter(pk=registration.pk, status=Status.QUEUED).exists()


def test_delete_removes_the_row_its_token_and_its_upload(alice, media, tmp_path, django_capture_on_commit_callbacks):
    archive = SimpleUploadedFile("t.tar.gz", tar_gz(make_tiny_real(tmp_path / "t")))
    registration, _ = registration_create(account=alice.account, user=alice.user, source_kind="archive", source="",
                                          archive=archive)
    folder = Path(registration.upload_path).parent
    with django_capture_on_commit_callbacks(execute=True):
        registration_delete(registration=registration, user=alice.user)
    assert not Registration.objects.filter(pk=registration.pk).exists()
    assert not Job.objects.filter(kind="inspection", subject_id=registration.pk).exists()  # its runs went with it
    assert not folder.exists()


def test_forget_token_deletes_only_the_token(alice):
    registration, _ = hub(alice, token="hf_abc")
    registration_forget_token(registration=registration, user=alice.user)
    row = Registration.objects.get(pk=registration.pk)
    assert row.token_encrypted == "" and row.status == Status.QUEUED


# --- selectors -------------------------------------------------------------------------------------------------

def test_selectors_hide_other_accounts_registrations(alice, bob):
    mine, _ = hub(alice)
    theirs, _ = hub(bob, "org/other")
    assert list(selectors.registrations_for(user=alice.user)) == [mine]
    assert list(selectors.registrations_for(user=alice.user, account=bob.account)) == []
    assert selectors.registration_get(user=alice.user, pk=mine.pk) == mine
    for pk in (theirs.pk, 0, -1, 2**70, "x", None):
        assert selectors.registration_get(user=alice.user, pk=pk) is None


def test_the_list_knows_token_and_verdict_without_loading_them(alice, django_assert_num_queries):
    registration, _ = hub(alice, token="hf_x")
    Registration.objects.filter(pk=registration.pk).update(status=Status.DONE, report={"deployable": False})
    with django_assert_num_queries(1):
        rows = list(selectors.registrations_for(user=alice.user))
        # The verdict is a column written with the report: the list reads it without the JSON.
        assert (rows[0].has_token, rows[0].verdict, rows[0].deployable) == (True, "refused", False)
    assert {"report", "token_encrypted"} <= rows[0].get_deferred_fields()


def test_a_tar_gz_the_browser_already_unpacked_is_accepted(alice, media, tmp_path):
    """A browser may gunzip a downloaded .tar.gz and keep its name: a plain tar, read as one."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(make_tiny_real(tmp_path / "tiny"), arcname="tiny")
    registration, created = registration_create(account=alice.account, user=alice.user, source_kind="archive",
                                                source="", archive=SimpleUploadedFile("tiny.tar.gz", buf.getvalue()))
    assert created and Path(registration.upload_path).read_bytes() == buf.getvalue()
