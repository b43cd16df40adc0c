# ruff: noqa: F811  (pytest fixtures imported from actors are redefined as arguments)
"""Bodies are refused by their size before they are read (finding 2 of
issue 11), and under /api/v1/ every refusal, also Django's own 400s, is the
JSON error envelope (finding 5)."""
from __future__ import annotations

import pytest
from actors import alice, media, member  # noqa: F401

BOUNDARY = "cfmboundary"


def _multipart(size: int, *, field: str = "archive", filename: str | None = "x.tar") -> bytes:
    disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: application/octet-stream\r\n\r\n"
    return head.encode() + b"\0" * size + f"\r\n--{BOUNDARY}--\r\n".encode()


def _post(client, path: str, body: bytes, content_type: str = f"multipart/form-data; boundary={BOUNDARY}", **extra):
    return client.generic("POST", path, body, content_type=content_type, **extra)


@pytest.fixture
def temp_dir(settings, tmp_path):
    """Where Django would spool an upload: must stay empty."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    return tmp_path / "spool"


@pytest.mark.parametrize("path", ["/accounts/login/", "/i18n/setlang/", "/models/new/", "/accounts/signup/",
                                  "/api/v1/registrations"])
def test_an_anonymous_50_mb_post_is_refused_unread_and_stores_nothing(client, db, temp_dir, path):
    client.get("/accounts/login/")  # the CSRF cookie, as the probe had it
    r = _post(client, path, _multipart(50 * 1024 * 1024))
    assert r.status_code == 413
    assert list(temp_dir.iterdir()) == []
    if path.startswith("/api/"):
        assert r.json()["error"]["code"] == "too_large"


def test_an_anonymous_login_form_still_works(client, db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("erin", password="right-password-1")
    r = client.post("/accounts/login/", {"username": "erin", "password": "right-password-1"})
    assert r.status_code == 302


def test_a_logged_in_user_may_not_post_large_bodies_outside_the_upload_endpoints(client, db, temp_dir, settings):
    user, account = member("frank")
    client.force_login(user)
    r = _post(client, f"/feedback/{account.pk}/survey/", _multipart(settings.CFM_BODY_MAX_BYTES + 1))
    assert r.status_code == 413 and list(temp_dir.iterdir()) == []


def test_a_logged_in_user_may_upload_to_the_register_page(client, db, temp_dir, settings, media):
    user, account = member("frank")
    client.force_login(user)
    # Over the general cap, under the upload cap: read (a form error, not a refusal of its size).
    body = _multipart(settings.CFM_BODY_MAX_BYTES + 1, field="archive-archive")
    r = _post(client, "/models/new/", body)
    assert r.status_code != 413


def test_a_token_holder_uploads_but_a_large_json_body_is_refused(client, alice, media, settings):
    r = _post(client, "/api/v1/registrations", b'{"account": 1, "source": "' + b"a" * (60 * 1024 * 1024) + b'"}',
              content_type="application/json", **alice.auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    r = _post(client, "/api/v1/registrations", _multipart(settings.CFM_BODY_MAX_BYTES + 1), **alice.auth)
    assert r.status_code == 400 and r.json()["error"]["fields"] == {"account": "required"}


def test_a_chunked_body_without_length_is_refused(client, db):
    r = client.generic("POST", "/api/v1/registrations", b"", content_type="application/json",
                       HTTP_TRANSFER_ENCODING="chunked")
    assert r.status_code == 411 and r.json()["error"]["code"] == "length_required"


# --- Django's own 400s under /api/v1/ ----------------------------------------------------------------------------

def test_a_bad_host_under_the_api_is_the_envelope(client, db):
    r = client.get("/api/v1/accounts", HTTP_HOST="evil.example")
    assert r.status_code == 400 and r["Content-Type"] == "application/json"
    assert r.json()["error"]["code"] == "bad_host"


def test_a_multipart_without_boundary_is_the_envelope(client, alice):
    r = _post(client, "/api/v1/registrations", b"--x\r\n\r\n", content_type="multipart/form-data", **alice.auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"


def test_too_many_files_is_the_envelope(client, alice, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 50
    parts = b"".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"; filename="f{i}"\r\n\r\nx\r\n'
                     .encode() for i in range(60))
    r = _post(client, "/api/v1/registrations", parts + f"--{BOUNDARY}--\r\n".encode(), **alice.auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"


def test_a_field_over_the_memory_limit_is_the_envelope(client, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    r = _post(client, "/api/v1/registrations", _multipart(20_000, field="account", filename=None), **alice.auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_an_html_page_error_under_the_api_is_the_envelope_also_with_debug(client, db, settings):
    settings.DEBUG = True
    r = client.get("/api/v1/accounts", HTTP_HOST="evil.example")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_host"
