# ruff: noqa: F811  (pytest fixtures imported from actors are redefined as arguments)
"""Input that used to give a 500 gets a clear 4xx (finding 5 of issue 11):
deep JSON, NUL characters (PostgreSQL), ledger units beyond the database's
integer, unit costs of 0, folder manifests declaring 2^63-byte files."""
from __future__ import annotations

import json
import os

import pytest
from actors import alice, media, member  # noqa: F401
from django.contrib.auth import get_user_model
from django.test import Client

from cfm.preparation.models import PrepareJob
from cfm.quota.models import LedgerEntry, UnitCost
from cfm.registry.models import Registration, SourceKind, Status

API = "/api/v1"


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _post(client, url, actor, data: str):
    return client.post(url, data=data, content_type="application/json", **actor.auth)


@pytest.fixture
def done_reg(alice):
    return Registration.objects.create(account=alice.account, created_by=alice.user, source_kind=SourceKind.HUB,
                                       source="acme/m", revision="main", status=Status.DONE, report={})


@pytest.mark.parametrize("levels", [1000, 100_000])
def test_deep_json_is_a_400_on_every_endpoint_that_reads_a_body(client, alice, done_reg, levels):
    job = PrepareJob.objects.create(registration=done_reg, account=alice.account, created_by=alice.user)
    body = '{"account": ' + deep(levels) + "}"
    for url in (f"{API}/registrations", f"{API}/registrations/{done_reg.pk}/rerun",
                f"{API}/registrations/{done_reg.pk}/prepare", f"{API}/prepare-jobs/{job.pk}/review",
                f"{API}/deployments", f"{API}/surveys", f"{API}/limit-requests"):
        r = _post(client, url, alice, body)
        assert r.status_code == 400, (url, r.content[:200])
        assert r.json()["error"]["fields"] == {"body": "too deep"}, url


def test_json_just_deep_enough_is_still_read(client, alice):
    r = _post(client, f"{API}/registrations", alice, json.dumps({"account": alice.account.pk, "source": "a/b",
                                                                  "x": json.loads(deep(30))}))
    assert r.status_code in (200, 201)


@pytest.mark.parametrize(("url", "body", "field"), [
    ("/surveys", {"configuration": "small", "use_case": "chat\u0000bot"}, "use_case"),
    ("/limit-requests", {"units": 9, "reason": "more\u0000please"}, "reason"),
    ("/registrations", {"source": "acme/m\u0000x"}, "source"),
])
def test_a_nul_character_is_a_400_naming_the_field(client, alice, url, body, field):
    r = _post(client, API + url, alice, json.dumps({"account": alice.account.pk, **body}))
    assert r.status_code == 400 and field in r.json()["error"]["fields"], r.content


def test_a_nul_in_a_form_body_is_a_400(client, alice):
    r = client.post(f"{API}/registrations/0/rerun", {"token": "hf_\u0000"}, **alice.auth)
    assert r.status_code in (400, 404)
    reg = Registration.objects.create(account=alice.account, created_by=alice.user, source_kind=SourceKind.HUB,
                                      source="acme/m", revision="main", status=Status.DONE, report={})
    r = client.post(f"{API}/registrations/{reg.pk}/rerun", {"token": "hf_\u0000"}, **alice.auth)
    assert r.status_code == 400 and "token" in r.json()["error"]["fields"]


# --- the admin's ledger and unit costs ---------------------------------------------------------------------

@pytest.fixture
def root_client(db):
    root = get_user_model().objects.create_superuser("root", password="x")
    c = Client()
    c.force_login(root)
    return c


@pytest.mark.parametrize("units", [2**31, -(2**31), 10**30, 1_000_001])
def test_a_ledger_adjustment_beyond_the_bounds_is_a_form_error(root_client, alice, units):
    r = root_client.post("/admin/quota/ledgerentry/adjust/", {"account": alice.account.pk, "units": str(units),
                                                              "reason": "probe"})
    assert r.status_code == 200 and "units" in r.context["form"].errors
    assert not LedgerEntry.objects.filter(kind="adjust").exists()


def test_the_largest_adjustment_is_written(root_client, alice):
    r = root_client.post("/admin/quota/ledgerentry/adjust/", {"account": alice.account.pk, "units": "1000000",
                                                              "reason": "big pilot"})
    assert r.status_code == 302 and LedgerEntry.objects.get(kind="adjust").units == 1_000_000


@pytest.mark.parametrize("units", ["0", str(2**31), "-1"])
def test_a_unit_cost_of_zero_or_beyond_the_bounds_is_refused(root_client, units):
    cost = UnitCost.objects.get(configuration="small")
    r = root_client.post(f"/admin/quota/unitcost/{cost.pk}/change/", {"configuration": "small", "units": units})
    assert r.status_code == 200 and "units" in r.context["adminform"].form.errors
    assert UnitCost.objects.get(pk=cost.pk).units == cost.units


# --- folder manifests -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [2**63, 2**63 - 1, 10**40])
def test_a_folder_manifest_with_a_huge_file_is_refused_clearly(client, db, media, size):
    user, account = member("gwen")
    client.force_login(user)
    manifest = json.dumps([{"path": "config.json", "size": 2, "part": "f0"},
                           {"path": "model.safetensors", "size": size, "part": None}])
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = client.post(f"/models/new/?account={account.pk}", {
        "kind": "folder", "account": account.pk, "folder": "m", "manifest": manifest,
        "f0": SimpleUploadedFile("config.json", b"{}")}, HTTP_X_REQUESTED_WITH="fetch")
    assert r.status_code == 400
    assert "no model file is over" in json.dumps(r.json()["errors"])
    assert not Registration.objects.exists()


def test_a_deep_folder_manifest_is_refused(client, db, media):
    user, account = member("gwen")
    client.force_login(user)
    r = client.post(f"/models/new/?account={account.pk}", {
        "kind": "folder", "account": account.pk, "folder": "m", "manifest": deep(100_000)},
        HTTP_X_REQUESTED_WITH="fetch")
    assert r.status_code == 400 and "could not be read" in json.dumps(r.json()["errors"])


def test_the_service_refuses_a_huge_folder_file_too(alice, media):
    from cfm.registry import services

    with pytest.raises(services.RegistrationError) as err:
        services.registration_create(account=alice.account, user=alice.user, source_kind="folder", source="m",
                                     folder_sizes={"config.json": 2, "model.safetensors": 2**63},
                                     folder_files={"config.json": b"{}"})
    assert err.value.code == "too_large" and err.value.status == 413


# --- a full disk during an upload ---------------------------------------------------------------------------

def test_a_full_disk_during_an_upload_is_a_clear_507_and_nothing_is_kept(client, alice, settings, tmp_path):
    import io
    import tarfile

    from diskfull import small_disk

    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        data = os.urandom(600_000)
        info = tarfile.TarInfo("model/config.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with small_disk(tmp_path / "disk", 256) as disk:
        settings.MEDIA_ROOT = disk / "media"
        from django.core.files.uploadedfile import SimpleUploadedFile

        archive = SimpleUploadedFile("model.tar", payload.getvalue())
        r = client.post(f"{API}/registrations", {"account": alice.account.pk, "archive": archive}, **alice.auth)
        assert r.status_code == 507, r.content
        error = r.json()["error"]
        assert error["code"] == "disk_full" and "ran out of disk space" in error["message"]
        assert str(disk) not in error["message"]
        assert list((disk / "media" / "uploads" / ".incoming").iterdir()) == []
        assert not Registration.objects.exists()


def test_a_full_temporary_folder_while_django_reads_an_upload_is_a_507(alice, settings, tmp_path):
    from diskfull import small_disk

    with small_disk(tmp_path / "spool", 128) as spool:
        settings.FILE_UPLOAD_TEMP_DIR = str(spool)
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
        c = Client(raise_request_exception=False)
        body = (b'--b\r\nContent-Disposition: form-data; name="archive"; filename="m.tar"\r\n\r\n'
                + os.urandom(400_000) + b"\r\n--b--\r\n")
        r = c.generic("POST", f"{API}/registrations", body, content_type="multipart/form-data; boundary=b",
                      **alice.auth)
        assert r.status_code == 507 and r.json()["error"]["code"] == "disk_full"
        assert str(spool) not in r.content.decode()


@pytest.mark.parametrize("url", ["/api/v1/registrations?status=%00", "/api/v1/accounts?x%00=1",
                                 "/api/v1/registrations/1%00"])
def test_a_nul_in_an_api_address_is_a_400(url, alice):
    r = Client(raise_request_exception=False).get(url, **alice.auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid", url


@pytest.mark.parametrize("url", ["/admin/quota/ledgerentry/?q=a%00b", "/admin/auth/user/?q=%00",
                                 "/dashboard/?page=%00"])
def test_a_nul_in_a_pages_query_is_read_without_it(url, db):
    c = Client(raise_request_exception=False)
    c.force_login(get_user_model().objects.create_superuser("root2", password="x"))
    assert c.get(url).status_code == 200, url
