"""Failed logins are throttled per account and per client address (finding 1
of issue 11): once locked, the right password is refused too, the page says
when to try again, and an administrator can unlock. Bearer tokens are not
passwords and are never throttled."""
from __future__ import annotations

import pytest
from actors import make_actor
from django.contrib.auth import get_user_model
from django.core.management import call_command

LOGIN = "/accounts/login/"


@pytest.fixture
def limits(settings):
    settings.CFM_LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = 3
    return settings


def _user(name: str):
    return get_user_model().objects.create_user(name, password="right-password-1")


def _post(client, username: str, password: str, addr: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=addr)


def test_after_the_limit_even_the_right_password_is_refused_with_a_retry_time(client, db, limits):
    _user("alice")
    for _ in range(2):
        assert _post(client, "alice", "wrong").status_code == 200
    assert _post(client, "alice", "wrong").status_code == 429  # the failure that reaches the limit says so
    r = _post(client, "alice", "right-password-1")
    assert r.status_code == 429
    assert r["Retry-After"] == "900"
    assert "Try again in 15 minutes" in r.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_account_is_locked_from_another_address_too(client, db, limits):
    _user("alice")
    for i in range(3):
        _post(client, "alice", "wrong", addr=f"10.0.0.{i + 1}")
    assert _post(client, "alice", "right-password-1", addr="10.9.9.9").status_code == 429


def test_an_address_trying_many_accounts_is_locked(client, db, limits):
    _user("carol")
    for name in ("x1", "x2", "x3"):
        _post(client, name, "wrong", addr="10.0.0.7")
    assert _post(client, "carol", "right-password-1", addr="10.0.0.7").status_code == 429
    r = _post(client, "carol", "right-password-1", addr="10.0.0.8")  # another address, an untouched account
    assert r.status_code == 302


def test_below_the_limit_the_right_password_logs_in(client, db, limits):
    _user("alice")
    for _ in range(2):
        _post(client, "alice", "wrong")
    assert _post(client, "alice", "right-password-1").status_code == 302


def test_an_administrator_unlocks_with_a_command(client, db, limits):
    _user("alice")
    for _ in range(3):
        _post(client, "alice", "wrong")
    assert _post(client, "alice", "right-password-1").status_code == 429
    call_command("axes_reset_username", "alice")
    call_command("axes_reset_ip", "10.0.0.1")
    assert _post(client, "alice", "right-password-1").status_code == 302


def test_an_administrator_unlocks_in_the_admin(client, db, limits):
    from axes.models import AccessAttempt

    _user("alice")
    for _ in range(3):
        _post(client, "alice", "wrong")
    admin = get_user_model().objects.create_superuser("root", password="x")
    staff = client.__class__()
    staff.force_login(admin)
    listing = staff.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    ids = list(AccessAttempt.objects.values_list("pk", flat=True))
    r = staff.post("/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": ids,
                                                   "post": "yes"})
    assert r.status_code == 302 and not AccessAttempt.objects.exists()
    assert _post(client, "alice", "right-password-1").status_code == 302


def test_the_lockout_page_speaks_japanese(client, db, limits):
    _user("alice")
    client.cookies["django_language"] = "ja"
    for _ in range(3):
        _post(client, "alice", "wrong")
    r = _post(client, "alice", "right-password-1")
    assert r.status_code == 429 and "15 分後" in r.content.decode()


def test_bearer_tokens_are_not_throttled(client, db, limits):
    actor = make_actor("dave")
    for _ in range(5):
        _post(client, "dave", "wrong")
    r = client.get("/api/v1/accounts", **actor.auth)
    assert r.status_code == 200
