"""Operator commands: each prints only the new object's id (or the token)
on stdout; errors are one line on stderr with exit status 1."""
from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from needs import test_database_url

from cfm.accounts.models import Account, Membership, Space
from cfm.accounts.tokens import token_user

ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def carol(db):
    return get_user_model().objects.create_user("carol")


def test_account_create_prints_only_the_new_id(carol):
    out = run("cfm_account", "create", "Research", "--plan", "standard", "--owner", "carol")
    account = Account.objects.get(pk=int(out.strip()))
    assert out == f"{account.pk}\n"
    assert (account.name, account.plan) == ("Research", "standard")
    assert Membership.objects.get(account=account, user=carol).role == "owner"


def test_add_member_adds_or_changes_the_role(carol):
    account = Account.objects.get(pk=int(run("cfm_account", "create", "R", "--plan", "lite", "--owner", "carol")))
    dave = get_user_model().objects.create_user("dave")
    membership = Membership.objects.get(pk=int(run("cfm_account", "add-member", str(account.pk), "dave")))
    assert (membership.account, membership.user, membership.role) == (account, dave, "member")
    run("cfm_account", "add-member", str(account.pk), "dave", "--role", "owner")
    assert Membership.objects.get(account=account, user=dave).role == "owner"


def test_space_create_with_and_without_runtime(carol):
    account = Account.objects.get(pk=int(run("cfm_account", "create", "R", "--plan", "standard", "--owner", "carol")))
    with_runtime = Space.objects.get(pk=int(run("cfm_space", "create", str(account.pk), "prod")))
    without = Space.objects.get(pk=int(run("cfm_space", "create", str(account.pk), "lab", "--no-runtime")))
    assert (with_runtime.runtime_instance, without.runtime_instance) == (True, False)


def test_token_prints_a_token_that_authenticates(carol):
    raw = run("cfm_token", "carol").strip()
    assert raw.startswith("cfm_") and "\n" not in raw
    assert token_user(raw) == carol


@pytest.mark.parametrize("args", [
    ("cfm_account", "create", "X", "--plan", "standard", "--owner", "nobody"),
    ("cfm_account", "add-member", "999999", "carol"),
    ("cfm_account", "add-member", "abc", "carol"),
    ("cfm_space", "create", "999999", "x"),
    ("cfm_token", "nobody"),
])
def test_errors_are_command_errors_with_status_1(carol, args):
    with pytest.raises(CommandError) as exc:
        run(*args)
    assert exc.value.returncode == 1
    assert not Account.objects.filter(name="X").exists()


@pytest.mark.django_db(transaction=True, available_apps=["django.contrib.contenttypes", "django.contrib.auth",
                                                          "cfm.accounts"])
def test_as_a_script_sees_them_stdout_is_the_id_and_errors_exit_1():
    get_user_model().objects.create_user("erin")
    env = {**os.environ, "DATABASE_URL": test_database_url()}

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    ok = manage("cfm_account", "create", "Ops", "--plan", "essentials", "--owner", "erin")
    assert ok.returncode == 0 and ok.stdout.strip().isdigit() and ok.stdout == ok.stdout.strip() + "\n", ok
    bad = manage("cfm_account", "create", "Ops", "--plan", "gold", "--owner", "erin")
    assert bad.returncode == 1 and bad.stdout == "" and "gold" in bad.stderr
    assert "Traceback" not in bad.stderr


def _manage(*args, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_an_operator_command_on_a_database_not_migrated_says_so_in_one_line(tmp_path):
    env = {"CFM_VAR_DIR": str(tmp_path / "elsewhere"), "DATABASE_URL": ""}  # a fresh SQLite file, no tables
    proc = _manage("cfm_token", "demo", env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "database is not ready" in proc.stderr and "migrate" in proc.stderr


@pytest.mark.parametrize("env, words", [({"CFM_HUB_TIMOUT": "3"}, "unknown setting(s) CFM_HUB_TIMOUT"),
                                        ({"CFM_HUB_TIMEOUT": "abc"}, "CFM_HUB_TIMEOUT='abc' is not an integer")])
def test_a_bad_setting_stops_manage_py_with_one_line(env, words):
    proc = _manage("check", env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cfm: ") and words in lines[0]
