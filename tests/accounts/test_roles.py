"""What members may do (finding 11 of issue 11; cfm.accounts.permissions):
every member registers, re-runs, prepares and deploys; deleting or
cancelling what another member made, or replacing its Hub token, is for
its maker and the account's owners: 403 `owner_only` in the API, a message
and no change on the pages, and no button for it."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from cfm.accounts.models import Account, Membership, Role, Space
from cfm.accounts.tokens import token_create
from cfm.preparation.models import PrepareJob, PrepareStatus
from cfm.quota.models import Deployment
from cfm.quota.services import deployment_request
from cfm.registry.models import Registration, SourceKind, Status
from cfm.registry.secrets import token_encrypt

API = "/api/v1"


@dataclass
class Person:
    user: object
    auth: dict


@pytest.fixture
def team(db):
    account = Account.objects.create(name="Team", plan="standard")
    space = Space.objects.create(account=account, name="team-space", runtime_instance=True)
    people = {}
    for name, role in (("olive", Role.OWNER), ("mia", Role.MEMBER), ("max", Role.MEMBER)):
        user = get_user_model().objects.create_user(name)
        Membership.objects.create(account=account, user=user, role=role)
        _, raw = token_create(user=user, name="t")
        people[name] = Person(user, {"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    return account, space, people


def _objects(account, space, maker, *, source="org/model"):
    from quotafactory import llama_report

    reg = Registration.objects.create(account=account, created_by=maker.user, source_kind=SourceKind.HUB,
                                      source=source, revision="main", status=Status.DONE, report=llama_report(),
                                      token_encrypted=token_encrypt("hf_maker_token"))
    running = Registration.objects.create(account=account, created_by=maker.user, source_kind=SourceKind.HUB,
                                          source=source + "-2", revision="main", status=Status.QUEUED)
    dep = deployment_request(user=maker.user, registration=reg, space=space,
                             serving_name=f"d_{maker.user.username}_{source[-1]}").deployment
    job = PrepareJob.objects.create(registration=reg, account=account, created_by=maker.user,
                                    status=PrepareStatus.REVIEW)
    return reg, running, dep, job


def _calls(reg, running, dep, job):
    return [
        ("post", f"{API}/registrations/{running.pk}/cancel", None),
        ("delete", f"{API}/registrations/{reg.pk}/token", None),
        ("post", f"{API}/registrations/{reg.pk}/rerun", {"token": "hf_someone_else"}),
        ("post", f"{API}/registrations", {"account": reg.account_id, "source": reg.source, "token": "hf_other"}),
        ("delete", f"{API}/deployments/{dep.pk}", None),
        ("post", f"{API}/prepare-jobs/{job.pk}/review", {"accept": True}),
        ("post", f"{API}/prepare-jobs/{job.pk}/cancel", None),
        ("delete", f"{API}/registrations/{reg.pk}", None),  # last: it takes the others with it
    ]


def _call(client, method, url, body, person):
    if method == "delete":
        return client.delete(url, **person.auth)
    return client.post(url, json.dumps(body) if body is not None else "", content_type="application/json",
                       **person.auth)


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_a_member_may_not_change_what_another_member_made(client, team):
    account, space, p = team
    reg, running, dep, job = _objects(account, space, p["olive"])
    for method, url, body in _calls(reg, running, dep, job):
        r = _call(client, method, url, body, p["mia"])
        assert r.status_code == 403, (url, r.content)
        assert r.json()["error"]["code"] == "owner_only", url
    reg.refresh_from_db()
    running.refresh_from_db()
    dep.refresh_from_db()
    job.refresh_from_db()
    assert reg.token_encrypted and running.status == Status.QUEUED and dep.is_active
    assert job.status == PrepareStatus.REVIEW


def test_a_member_may_re_run_and_prepare_anything_of_the_account(client, team):
    account, space, p = team
    reg, running, dep, job = _objects(account, space, p["olive"])
    assert _call(client, "post", f"{API}/registrations/{reg.pk}/rerun", None, p["mia"]).status_code == 202


@pytest.mark.parametrize("actor", ["mia", "olive"])
def test_the_maker_and_an_owner_may_change_it(client, team, actor):
    account, space, p = team
    reg, running, dep, job = _objects(account, space, p["mia"])
    for method, url, body in _calls(reg, running, dep, job):
        r = _call(client, method, url, body, p[actor])
        assert r.status_code in (200, 201, 202, 204, 409), (actor, url, r.content)
        assert r.status_code != 403


def test_the_pages_refuse_and_hide_what_a_member_may_not_do(team):
    account, space, p = team
    reg, running, dep, job = _objects(account, space, p["olive"])
    mia = Client()
    mia.force_login(p["mia"].user)
    page = mia.get(f"/models/{running.pk}/").content.decode()
    prepare_page = mia.get(f"/models/{reg.pk}/prepare/").content.decode()
    assert 'id="rope-accept"' not in prepare_page and "answers it" in prepare_page
    assert f"/models/{running.pk}/delete/" not in page and f"/models/{running.pk}/cancel/" not in page
    assert f"/deployments/{dep.pk}/delete/" not in mia.get(f"/quota/deployments/{dep.pk}/").content.decode()
    assert f"/deployments/{dep.pk}/delete/" not in mia.get(f"/quota/{account.pk}/usage/").content.decode()
    for url in (f"/models/{reg.pk}/delete/", f"/models/{running.pk}/cancel/", f"/models/{reg.pk}/forget-token/",
                f"/quota/deployments/{dep.pk}/delete/", f"/models/{reg.pk}/prepare/{job.pk}/cancel/"):
        r = mia.post(url, follow=True)
        assert r.status_code == 200, url
        assert "Only an owner of the account or the member who made this" in r.content.decode(), url
    assert Registration.objects.filter(pk=reg.pk).exclude(token_encrypted="").exists()
    assert Deployment.objects.get(pk=dep.pk).is_active
    assert Registration.objects.get(pk=running.pk).status == Status.QUEUED
    assert PrepareJob.objects.get(pk=job.pk).status == PrepareStatus.REVIEW

    olive = Client()
    olive.force_login(p["olive"].user)
    assert f"/models/{running.pk}/delete/" in olive.get(f"/models/{running.pk}/").content.decode()
    assert olive.post(f"/quota/deployments/{dep.pk}/delete/").status_code == 302
    assert not Deployment.objects.get(pk=dep.pk).is_active


def test_api_tokens_are_their_users_alone(team):
    from cfm.accounts.models import ApiToken

    account, space, p = team
    olive_token = ApiToken.objects.get(user=p["olive"].user)
    mia = Client()
    mia.force_login(p["mia"].user)
    assert mia.post(f"/accounts/settings/tokens/{olive_token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.get(pk=olive_token.pk).revoked_at is None
