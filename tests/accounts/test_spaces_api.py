# ruff: noqa: F811  (pytest fixtures imported from actors are redefined as arguments)
"""Spaces, self-service (docs/platform.md): POST /accounts/{id}/spaces, GET,
PATCH and DELETE /spaces/{id}. Owners create and edit; members see them
(403 owner_only for the rest); a stranger gets 404 and the anonymous 401."""
from __future__ import annotations

import json

import pytest
from actors import alice, bob, make_actor  # noqa: F401

from cfm.accounts.models import Space
from cfm.accounts.services import membership_add

API = "/api/v1"


def send(client, method, path, actor=None, body=None, raw=None):
    auth = actor.auth if actor else {}
    data = raw if raw is not None else (json.dumps(body) if body is not None else "")
    return getattr(client, method)(API + path, data=data, content_type="application/json", **auth)


@pytest.fixture
def carol(alice):
    """A member (not an owner) of alice's account."""
    actor = make_actor("carol")
    membership_add(account=alice.account, user=actor.user, role="member")
    return actor


def test_an_owner_creates_a_space_and_reads_it_back(client, alice):
    body = {"name": " lab ", "runtime_instance": False}
    r = send(client, "post", f"/accounts/{alice.account.pk}/spaces", alice, body)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body == {"id": body["id"], "account": alice.account.pk, "name": "lab", "runtime_instance": False,
                    "platform": None}
    assert send(client, "get", f"/spaces/{body['id']}", alice).json() == body
    names = [s["name"] for s in send(client, "get", f"/accounts/{alice.account.pk}/spaces", alice).json()["items"]]
    assert names == ["alice-space", "lab"]


def test_runtime_instance_defaults_to_true_and_must_be_a_boolean(client, alice):
    r = send(client, "post", f"/accounts/{alice.account.pk}/spaces", alice, {"name": "prod"})
    assert r.status_code == 201 and r.json()["runtime_instance"] is True
    r = send(client, "post", f"/accounts/{alice.account.pk}/spaces", alice, {"name": "x", "runtime_instance": "false"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid" and "runtime_instance" in r.json()["error"]["fields"]


@pytest.mark.parametrize("body, field", [({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 121}, "name"),
                                         ({"name": 5}, "name")])
def test_a_bad_name_is_a_400_naming_it(client, alice, body, field):
    r = send(client, "post", f"/accounts/{alice.account.pk}/spaces", alice, body)
    assert r.status_code == 400, r.content
    assert field in r.json()["error"]["fields"]
    assert Space.objects.filter(account=alice.account).count() == 1


def test_a_body_that_is_not_json_gets_the_envelope(client, alice):
    r = send(client, "post", f"/accounts/{alice.account.pk}/spaces", alice, raw="{nope")
    assert r.status_code == 400 and r.json()["error"]["fields"] == {"body": "not JSON"}


def test_a_member_sees_spaces_but_may_not_create_edit_or_delete_them(client, alice, carol):
    space = alice.account.spaces.get()
    assert send(client, "get", f"/spaces/{space.pk}", carol).status_code == 200
    for method, path, body in [("post", f"/accounts/{alice.account.pk}/spaces", {"name": "mine"}),
                               ("patch", f"/spaces/{space.pk}", {"name": "renamed"}),
                               ("delete", f"/spaces/{space.pk}", None)]:
        r = send(client, method, path, carol, body)
        assert r.status_code == 403, (method, r.content)
        assert r.json()["error"]["code"] == "owner_only"
    space.refresh_from_db()
    assert space.name == "alice-space" and space.deleted_at is None
    assert Space.objects.filter(account=alice.account).count() == 1


def test_a_stranger_gets_404_as_for_a_space_that_does_not_exist(client, alice, bob):
    space = alice.account.spaces.get()
    for method, path, body in [("get", f"/spaces/{space.pk}", None),
                               ("patch", f"/spaces/{space.pk}", {"name": "x"}),
                               ("delete", f"/spaces/{space.pk}", None),
                               ("post", f"/accounts/{alice.account.pk}/spaces", {"name": "x"})]:
        theirs = send(client, method, path, bob, body)
        assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found", (method, path)
    assert send(client, "get", "/spaces/987654321", bob).status_code == 404
    assert send(client, "get", f"/spaces/{2**70}", bob).status_code == 404
    assert send(client, "get", f"/spaces/{space.pk}").status_code == 401
    assert send(client, "post", f"/accounts/{alice.account.pk}/spaces", None, {"name": "x"}).status_code == 401


def test_patch_renames_and_toggles_the_runtime_leaving_the_rest(client, alice):
    space = alice.account.spaces.get()
    r = send(client, "patch", f"/spaces/{space.pk}", alice, {"runtime_instance": False})
    assert r.status_code == 200 and r.json()["runtime_instance"] is False and r.json()["name"] == "alice-space"
    r = send(client, "patch", f"/spaces/{space.pk}", alice, {"name": "prod"})
    assert r.json()["name"] == "prod" and r.json()["runtime_instance"] is False
    assert send(client, "patch", f"/spaces/{space.pk}", alice, {"name": "  "}).status_code == 400
    space.refresh_from_db()
    assert (space.name, space.runtime_instance) == ("prod", False)


def test_delete_is_a_204_and_the_space_is_gone_everywhere(client, alice):
    space = alice.account.spaces.get()
    assert send(client, "delete", f"/spaces/{space.pk}", alice).status_code == 204
    assert send(client, "get", f"/spaces/{space.pk}", alice).status_code == 404
    assert send(client, "delete", f"/spaces/{space.pk}", alice).status_code == 404
    assert send(client, "get", f"/accounts/{alice.account.pk}/spaces", alice).json()["items"] == []
    assert Space.all_objects.get(pk=space.pk).deleted_at is not None  # kept for the history of its deployments


def test_a_space_holding_a_deployment_is_a_409_space_in_use_until_it_is_deleted(client, alice):
    from quotafactory import make_registration

    from cfm.quota import services

    space = alice.account.spaces.get()
    registration = make_registration(alice.account)
    dep = services.deployment_request(user=alice.user, registration=registration, space=space,
                                      serving_name="llama_one").deployment
    r = send(client, "delete", f"/spaces/{space.pk}", alice)
    assert r.status_code == 409, r.content
    err = r.json()["error"]
    assert err["code"] == "space_in_use" and err["deployments"] == [dep.pk] and "llama_one" in err["message"]
    assert send(client, "get", f"/spaces/{space.pk}", alice).status_code == 200
    services.deployment_delete(user=alice.user, deployment=dep)
    assert send(client, "delete", f"/spaces/{space.pk}", alice).status_code == 204
    dep.refresh_from_db()
    assert dep.space.name == "alice-space"  # the ended deployment still names where it ran
    r = send(client, "get", f"/deployments/{dep.pk}", alice)
    assert r.status_code in (200, 404)  # released: not listed as active, and never a 500


def test_the_openapi_document_lists_the_space_operations_refusals(client, db):
    schema = client.get(API + "/openapi.json").json()

    def codes(method, path, status):
        body = schema["paths"][API + path][method]["responses"][str(status)]["content"]["application/json"]
        return body["schema"]["properties"]["error"]["properties"]["code"]["enum"]

    assert "owner_only" in codes("post", "/accounts/{account_id}/spaces", 403)
    assert "owner_only" in codes("patch", "/spaces/{space_id}", 403)
    assert "space_in_use" in codes("delete", "/spaces/{space_id}", 409)
