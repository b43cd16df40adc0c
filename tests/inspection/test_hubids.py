# ruff: noqa: F811  (pytest fixtures imported from actors are redefined as arguments)
"""One validator for Hub repo ids and revisions (finding 7 of issue 11),
asked by the form, the API and the engine alike."""
from __future__ import annotations

import json

import pytest
from actors import alice  # noqa: F401

from cfm.inspection import SourceError
from cfm.inspection.hub import parse_repo_spec
from cfm.inspection.hubids import is_repo_id, is_revision
from cfm.registry.forms import HubForm

GOOD_REVISIONS = ["main", "v1.0", "refs/pr/1", "release-2024_01", "a" * 40, "feature/x+y"]
BAD_REVISIONS = ["main/../../x", "..", "../main", "a//b", "main/", "/main", ".hidden", "x/.y", "a.lock", "a b",
                 "a\x00", "ma~in", "a:b", "", "x" * 201, "main?x=1", "main#frag", "%2e%2e"]
GOOD_REPOS = ["gpt2", "ibm-granite/granite-3.0-8b-instruct", "org/_private_", "a/b"]
BAD_REPOS = ["", "org/name.git", "a/b/c", "-a/b", "a./b", "a--b/c", "a/b..c", "a b/c", "../x", "x" * 97, "org/na@me"]


@pytest.mark.parametrize("rev", GOOD_REVISIONS)
def test_good_revisions_pass_everywhere(rev):
    assert is_revision(rev)
    assert parse_repo_spec("org/name", rev) == ("org/name", rev)
    form = HubForm({"hub-source": "org/name", "hub-revision": rev}, prefix="hub")
    assert form.is_valid(), form.errors


@pytest.mark.parametrize("rev", BAD_REVISIONS)
def test_bad_revisions_are_refused_everywhere(rev):
    assert not is_revision(rev)
    if rev:
        with pytest.raises(SourceError):
            parse_repo_spec("org/name", rev)
        form = HubForm({"hub-source": "org/name", "hub-revision": rev}, prefix="hub")
        assert not form.is_valid()


@pytest.mark.parametrize("repo", GOOD_REPOS)
def test_good_repo_ids(repo):
    assert is_repo_id(repo) and parse_repo_spec(f"hf://{repo}")[0] == repo


@pytest.mark.parametrize("repo", BAD_REPOS)
def test_bad_repo_ids(repo):
    assert not is_repo_id(repo)
    with pytest.raises(SourceError):
        parse_repo_spec(repo) if "@" not in repo else parse_repo_spec(repo.replace("@", "/"))


def test_the_api_refuses_the_revision_the_form_refuses(client, alice):
    r = client.post("/api/v1/registrations", json.dumps({"account": alice.account.pk, "source": "org/name",
                                                         "revision": "main/../../x"}),
                    content_type="application/json", **alice.auth)
    assert r.status_code == 400 and "revision" in r.json()["error"]["fields"]


def test_the_command_refuses_it_too(run_inspect):
    proc, _ = run_inspect("org/name", "--revision", "main/../../x")
    assert proc.returncode == 2 and "not a valid revision" in proc.stderr


def test_the_page_never_links_a_stored_bad_revision(client, alice, settings):
    from cfm.registry.models import Registration, SourceKind

    reg = Registration.objects.create(account=alice.account, created_by=alice.user, source_kind=SourceKind.HUB,
                                      source="org/name", revision="main/../../x")
    client.force_login(alice.user)
    page = client.get(f"/models/{reg.pk}/").content.decode()
    assert f'href="{settings.HF_ENDPOINT}/org/name"' in page and "/tree/main/../" not in page
