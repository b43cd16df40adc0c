"""What a failed Hub registration tells its user: the repo and what to do,
never local folders (a registration made as a Hub repo id is not a path) nor
the address this server reaches the Hub at (HF_ENDPOINT may be an internal
mirror). The command line, whose user may have meant a path and set
HF_ENDPOINT themselves, keeps saying both."""
from __future__ import annotations

import pytest
from actors import make_actor
from django.urls import reverse
from jobrun import run_latest
from worker_support import own_broker  # noqa: F401

from cfm.inspection.hub import public_message
from cfm.registry.models import Registration, Status
from cfm.registry.services import registration_create


@pytest.fixture
def owner(committed_db, own_broker, hub_server, settings, tmp_path):  # noqa: F811
    """Committed: the job's heartbeat thread has a database connection of its own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.HF_ENDPOINT = hub_server.url
    return make_actor("owner")


def _failed_hub_registration(owner, source: str) -> Registration:
    registration, _ = registration_create(account=owner.account, user=owner.user, source_kind="hub", source=source)
    run_latest(registration)
    return Registration.objects.get(pk=registration.pk)


def test_a_missing_hub_repo_says_so_without_local_folders_or_the_hub_address(owner, hub_server, client):
    row = _failed_hub_registration(owner, "org/missing")
    assert (row.status, row.error_code) == (Status.FAILED, "repo_not_found")
    assert "no repo org/missing on the Hub" in row.error_message
    assert "local" not in row.error_message and hub_server.url not in row.error_message
    assert "127.0.0.1" not in row.error_message

    client.force_login(owner.user)
    html = client.get(reverse("registration", args=[row.pk])).content.decode()
    failure = html.split('id="error-title"')[1].split("</section>")[0]
    assert "The Hub has no repository of that name." in failure and "org/missing on the Hub" in failure
    assert "local folder" not in failure and hub_server.url not in failure
    api = client.get(f"/api/v1/registrations/{row.pk}", HTTP_AUTHORIZATION=f"Bearer {owner.token}").json()
    assert api["error"] == {"code": "repo_not_found", "message": row.error_message}


def test_a_hub_that_is_down_is_named_the_hub_not_by_its_address(owner, hub_server):
    hub_server.fail_always = 503
    registration, _ = registration_create(account=owner.account, user=owner.user, source_kind="hub",
                                          source="org/down")
    assert run_latest(registration) == "retry"
    row = Registration.objects.get(pk=registration.pk)
    assert row.error_code == "hub_unavailable" and row.error_message.startswith("the Hub answered 503")
    assert hub_server.url not in row.error_message and "127.0.0.1" not in row.error_message


@pytest.mark.parametrize("message, public", [
    ("no Hub repo a/b at http://10.0.0.7:8080 (if it is private, pass a token that can read it)",
     "no repo a/b on the Hub (if it is private, pass a token that can read it)"),
    ("a/b is gated: pass a token of an account that has it (--token)",
     "a/b is gated: pass a token of an account that has it"),
    ("cannot reach the Hub at http://10.0.0.7:8080 while reading x (3 attempts): refused",
     "cannot reach the Hub while reading x (3 attempts): refused"),
    ("http://10.0.0.7:8080 did not answer like the Hugging Face Hub (HF_ENDPOINT) for a/b",
     "the Hub did not answer like the Hugging Face Hub for a/b"),
    ("a/b: the Hub could not be reached (500 Server Error for url: http://10.0.0.7:8080/api/models/a/b)",
     "a/b: the Hub could not be reached (500 Server Error for url: the Hub)"),
    ("the archive x.tar is corrupt", "the archive x.tar is corrupt"),
])
def test_a_message_for_users_names_the_hub_instead_of_its_address(message, public):
    assert public_message(message, ("http://10.0.0.7:8080/",)) == public


def test_the_command_line_still_says_it_looked_for_a_local_path_and_where_the_hub_is(hub_server, run_inspect):
    proc, _ = run_inspect("org/nothing")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"cfm_inspect: no local folder or archive named org/nothing, and no Hub repo "
                                   f"org/nothing at {hub_server.url} (if it is private, pass a token that can read it)")
    explicit, _ = run_inspect("hf://org/nothing")  # a Hub id for sure: no path was looked for
    assert explicit.returncode == 2 and "local folder" not in explicit.stderr
    assert f"no Hub repo org/nothing at {hub_server.url}" in explicit.stderr
