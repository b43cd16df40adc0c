# ruff: noqa: F811  (pytest fixtures imported from actors are redefined as arguments)
"""The registrations API of docs/api.md: shapes, status
codes, error codes, pagination, and three users on every endpoint (the
owner; bob, a member of another account: 404; anonymous: 401)."""
from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import jsonschema
import pytest
from actors import alice, bob, make_actor, media  # noqa: F401
from django.core.files.uploadedfile import SimpleUploadedFile
from modelfactory import make_tiny_real

from cfm.accounts.tokens import token_revoke
from cfm.inspection import inspect
from cfm.registry.models import Registration, Status
from cfm.registry.services import registration_create

API = "/api/v1"
REGISTRATION_KEYS = {"id", "account", "source", "revision", "status", "progress", "error", "report_url",
                     "created_at", "updated_at"}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def post_json(client, path, body, actor=None):
    return client.post(path, data=json.dumps(body), content_type="application/json", **(actor.auth if actor else {}))


def tar_gz(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    return buf.getvalue()


@pytest.fixture
def done_registration(alice, tmp_path):
    registration, _ = registration_create(account=alice.account, user=alice.user, source_kind="hub",
                                          source="org/tiny", token="hf_secret_token_1")
    report = inspect(str(make_tiny_real(tmp_path / "tiny"))).to_dict()
    Registration.objects.filter(pk=registration.pk).update(status=Status.DONE, report=report)
    return Registration.objects.get(pk=registration.pk)


# --- three users on every endpoint -------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", "/registrations/{id}", None, 200),
    ("get", "/registrations/{id}/report", None, 200),
    ("post", "/registrations/{id}/rerun", None, 202),
    ("post", "/registrations/{id}/cancel", None, 202),
    ("delete", "/registrations/{id}/token", None, 204),
    ("delete", "/registrations/{id}", None, 204),
    ("get", "/registrations?account={account}", None, 200),
    ("post", "/registrations", {"account": "{account}", "source": "org/other"}, 201),
    ("get", "/accounts/{account}/spaces", None, 200),
]


@pytest.mark.parametrize("method,path,body,owner_status", ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_owner_stranger_and_anonymous_on_every_endpoint(client, alice, bob, done_registration, method, path, body,
                                                        owner_status):
    url = API + path.format(id=done_registration.pk, account=alice.account.pk)
    if body is not None:
        body = {k: (alice.account.pk if v == "{account}" else v) for k, v in body.items()}

    def call(actor):
        auth = actor.auth if actor else {}
        if body is not None:
            return getattr(client, method)(url, data=json.dumps(body), content_type="application/json", **auth)
        return getattr(client, method)(url, **auth)

    anonymous = call(None)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthenticated"
    stranger = call(bob)
    assert stranger.status_code == 404, stranger.content
    assert stranger.json() == {"error": {"code": "not_found", "message": stranger.json()["error"]["message"]}}
    assert Registration.objects.filter(pk=done_registration.pk, status=Status.DONE).exists()
    owner = call(alice)
    assert owner.status_code == owner_status, owner.content


def test_a_strangers_id_answers_exactly_as_a_missing_one(client, alice, bob, done_registration):
    theirs = client.get(f"{API}/registrations/{done_registration.pk}", **bob.auth)
    missing = client.get(f"{API}/registrations/99999999", **bob.auth)
    huge = client.get(f"{API}/registrations/{2**70}", **bob.auth)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert huge.status_code in (400, 404)


def test_revoked_and_garbage_tokens_are_unauthenticated(client, alice):
    from cfm.accounts.models import ApiToken

    token_revoke(token=ApiToken.objects.get(user=alice.user))
    for header in (f"Bearer {alice.token}", "Bearer cfm_nope", "Bearer ", "Basic abc"):
        r = client.get(f"{API}/registrations", HTTP_AUTHORIZATION=header)
        assert r.status_code == 401, header


# --- POST /registrations -------------------------------------------------------------------------------------

def test_registering_a_hub_repo_answers_201_with_the_registration(client, alice):
    r = post_json(client, f"{API}/registrations", {"account": alice.account.pk, "source": "hf://org/name",
                                                    "revision": "main", "token": "hf_abcdef"}, alice)
    assert r.status_code == 201, r.content
    body = r.json()
    assert REGISTRATION_KEYS <= set(body)
    assert (body["account"], body["source"], body["revision"], body["status"]) == (alice.account.pk, "org/name",
                                                                                   "main", "queued")
    assert set(body["progress"]) == {"step", "done", "total", "bytes_done", "bytes_total"}
    assert body["error"] is None and body["report_url"] is None
    assert ISO_UTC.match(body["created_at"]) and ISO_UTC.match(body["updated_at"])
    assert "hf_abcdef" not in r.content.decode() and body["has_token"] is True


def test_a_duplicate_registration_answers_200_with_the_existing_one(client, alice):
    first = post_json(client, f"{API}/registrations", {"account": alice.account.pk, "source": "org/name"}, alice)
    again = post_json(client, f"{API}/registrations", {"account": alice.account.pk, "source": "hf://org/name"}, alice)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def test_a_revision_left_out_is_main_so_main_given_later_is_the_same_registration(client, alice):
    first = post_json(client, f"{API}/registrations", {"account": alice.account.pk, "source": "org/x"}, alice)
    assert first.status_code == 201 and first.json()["revision"] == "main"
    for revision in ("main", "", None, " main "):
        again = post_json(client, f"{API}/registrations",
                          {"account": alice.account.pk, "source": "hf://org/x", "revision": revision}, alice)
        assert (again.status_code, again.json()["id"]) == (200, first.json()["id"]), revision
    form = client.post(f"{API}/registrations", {"account": alice.account.pk, "source": "org/x"}, **alice.auth)
    assert (form.status_code, form.json()["id"]) == (200, first.json()["id"])
    other = post_json(client, f"{API}/registrations",
                      {"account": alice.account.pk, "source": "org/x", "revision": "v2"}, alice)
    assert other.status_code == 201 and Registration.objects.count() == 2


def test_a_plan_that_may_not_register_answers_403(client, db):
    carol = make_actor("carol", plan="lite")
    r = post_json(client, f"{API}/registrations", {"account": carol.account.pk, "source": "org/name"}, carol)
    assert r.status_code == 403 and r.json()["error"]["code"] == "plan_not_allowed"


@pytest.mark.parametrize("body,field", [
    ({"source": "org/name"}, "account"),
    ({"account": "{account}"}, "source"),
    ({"account": "{account}", "source": "not a repo"}, "source"),
    ({"account": "{account}", "source": "org/name", "revision": "bad revision!"}, "revision"),
    ({"account": "{account}", "source": "org/name", "token": "hf bad token"}, "token"),
])
def test_invalid_input_answers_400_naming_the_field(client, alice, body, field):
    body = {k: (alice.account.pk if v == "{account}" else v) for k, v in body.items()}
    r = post_json(client, f"{API}/registrations", body, alice)
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]


def test_a_body_that_is_not_json_answers_400(client, alice):
    r = client.post(f"{API}/registrations", data="{nope", content_type="application/json", **alice.auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"


def test_an_archive_upload_answers_201(client, alice, media, tmp_path):
    archive = SimpleUploadedFile("tiny.tar.gz", tar_gz(make_tiny_real(tmp_path / "tiny")))
    r = client.post(f"{API}/registrations", {"account": alice.account.pk, "archive": archive}, **alice.auth)
    assert r.status_code == 201, r.content
    assert (r.json()["source"], r.json()["source_kind"]) == ("tiny.tar.gz", "archive")


def test_an_archive_over_the_limit_answers_413(client, alice, media, settings, tmp_path):
    settings.CFM_UPLOAD_MAX_BYTES = 2048
    archive = SimpleUploadedFile("big.tar.gz", b"\x1f\x8b" + b"\x00" * 4000)
    r = client.post(f"{API}/registrations", {"account": alice.account.pk, "archive": archive}, **alice.auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert not Registration.objects.exists()


def test_an_oversized_upload_is_refused_before_it_is_read(client, alice, media, settings):
    settings.CFM_UPLOAD_MAX_BYTES = 1024
    archive = SimpleUploadedFile("huge.zip", b"PK" + b"\x00" * (2 * 1024 * 1024))
    r = client.post(f"{API}/registrations", {"account": alice.account.pk, "archive": archive}, **alice.auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert not (media / "uploads").exists()


def test_a_file_that_is_not_an_archive_answers_400(client, alice, media):
    upload = SimpleUploadedFile("weights.bin", b"\x00" * 100)
    r = client.post(f"{API}/registrations", {"account": alice.account.pk, "archive": upload}, **alice.auth)
    assert r.status_code == 400
    assert r.json()["error"]["fields"] == {"archive": r.json()["error"]["message"]}


def test_an_upload_into_a_strangers_account_answers_404(client, alice, bob, media):
    upload = SimpleUploadedFile("x.zip", b"PK\x05\x06" + b"\x00" * 18)
    r = client.post(f"{API}/registrations", {"account": alice.account.pk, "archive": upload}, **bob.auth)
    assert r.status_code == 404
    assert not Registration.objects.exists()


# --- reading -----------------------------------------------------------------------------------------------------

def test_the_list_is_paginated_with_a_next_link(client, alice, bob):
    for i in range(3):
        registration_create(account=alice.account, user=alice.user, source_kind="hub", source=f"org/m{i}")
    registration_create(account=bob.account, user=bob.user, source_kind="hub", source="org/bobs")
    page = client.get(f"{API}/registrations?account={alice.account.pk}&limit=2", **alice.auth).json()
    assert [r["source"] for r in page["items"]] == ["org/m2", "org/m1"]
    rest = client.get(page["next"], **alice.auth).json()
    assert [r["source"] for r in rest["items"]] == ["org/m0"] and rest["next"] is None
    everything = client.get(f"{API}/registrations", **alice.auth).json()
    assert {r["source"] for r in everything["items"]} == {"org/m0", "org/m1", "org/m2"}


def test_the_report_is_404_until_done_then_the_contract_json(client, alice, done_registration):
    pending, _ = registration_create(account=alice.account, user=alice.user, source_kind="hub", source="org/later")
    r = client.get(f"{API}/registrations/{pending.pk}/report", **alice.auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    detail = client.get(f"{API}/registrations/{done_registration.pk}", **alice.auth).json()
    assert detail["report_url"].endswith(f"/api/v1/registrations/{done_registration.pk}/report")
    report = client.get(detail["report_url"], **alice.auth).json()
    assert report == done_registration.report
    schema = client.get(f"{API}/report-schema.json").json()  # public, no token
    jsonschema.validate(report, schema)


def test_the_published_schema_refuses_a_report_that_breaks_the_contract(client, done_registration):
    schema = client.get(f"{API}/report-schema.json").json()
    broken = dict(done_registration.report, checks=done_registration.report["checks"][::-1])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(done_registration.report, configuration="huge"), schema)


def test_rerun_and_cancel_answer_202(client, alice, done_registration):
    rerun = client.post(f"{API}/registrations/{done_registration.pk}/rerun", **alice.auth)
    assert rerun.status_code == 202 and rerun.json()["status"] == "queued"
    cancel = client.post(f"{API}/registrations/{done_registration.pk}/cancel", **alice.auth)
    assert cancel.status_code == 202
    assert cancel.json()["status"] == "failed"
    assert cancel.json()["error"]["code"] == "cancelled"


def test_delete_removes_the_registration_and_then_404(client, alice, done_registration):
    assert client.delete(f"{API}/registrations/{done_registration.pk}", **alice.auth).status_code == 204
    assert client.delete(f"{API}/registrations/{done_registration.pk}", **alice.auth).status_code == 404
    assert not Registration.objects.filter(pk=done_registration.pk).exists()


# --- documentation ----------------------------------------------------------------------------------------------

def test_openapi_lists_the_contracts_paths(client):
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    for path in ("/api/v1/registrations", "/api/v1/registrations/{registration_id}",
                 "/api/v1/registrations/{registration_id}/report", "/api/v1/registrations/{registration_id}/rerun",
                 "/api/v1/registrations/{registration_id}/cancel", "/api/v1/accounts",
                 "/api/v1/accounts/{account_id}/spaces"):
        assert path in paths
    create = paths["/api/v1/registrations"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(create)


def test_the_docs_page_loads_its_scripts_from_our_static_files(client):
    from django.contrib.staticfiles import finders

    html = client.get(f"{API}/docs").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    for s in sources:
        assert finders.find(s.removeprefix("/static/")), s


def test_the_list_costs_the_same_queries_for_3_or_30_registrations(client, alice):
    def count_queries(n_total: int) -> int:
        while Registration.objects.count() < n_total:
            i = Registration.objects.count()
            registration_create(account=alice.account, user=alice.user, source_kind="hub", source=f"org/q{i}",
                                token="hf_t")
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert len(client.get(f"{API}/registrations", **alice.auth).json()["items"]) == n_total
        return len(ctx.captured_queries)

    assert count_queries(3) == count_queries(30)
