# ruff: noqa: F811  (pytest fixtures imported from actors are redefined as arguments)
"""GET /api/v1/accounts and /accounts/{id}/spaces: the user's own, with
three users (owner, a member of another account: 404, anonymous: 401)."""
from __future__ import annotations

from actors import alice, bob  # noqa: F401

from cfm.accounts.services import account_create, membership_add, space_create

API = "/api/v1"


def test_accounts_lists_only_mine_with_my_role(client, alice, bob):
    shared = account_create(name="Shared", plan="lite", owner=bob.user)
    membership_add(account=shared, user=alice.user, role="member")
    body = client.get(f"{API}/accounts", **alice.auth).json()
    assert body["next"] is None
    assert sorted(body["items"], key=lambda a: a["id"]) == [
        {"id": alice.account.pk, "name": "alice's team", "plan": "standard", "role": "owner"},
        {"id": shared.pk, "name": "Shared", "plan": "lite", "role": "member"},
    ]
    theirs = client.get(f"{API}/accounts", **bob.auth).json()["items"]
    assert {a["id"] for a in theirs} == {bob.account.pk, shared.pk}


def test_accounts_needs_a_token(client, db):
    r = client.get(f"{API}/accounts")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


def test_spaces_of_my_account_and_404_for_a_strangers(client, alice, bob):
    space_create(account=alice.account, name="lab", runtime_instance=False)
    url = f"{API}/accounts/{alice.account.pk}/spaces"
    items = client.get(url, **alice.auth).json()["items"]
    assert items == [{"id": items[0]["id"], "name": "alice-space", "runtime_instance": True},
                     {"id": items[1]["id"], "name": "lab", "runtime_instance": False}]
    stranger = client.get(url, **bob.auth)
    missing = client.get(f"{API}/accounts/987654321/spaces", **bob.auth)
    assert stranger.status_code == missing.status_code == 404
    assert stranger.json() == missing.json()
    assert client.get(url).status_code == 401
    assert client.get(f"{API}/accounts/{2**70}/spaces", **bob.auth).status_code in (400, 404)


def test_lists_page_with_limit_and_next(client, alice):
    for i in range(4):
        space_create(account=alice.account, name=f"s{i}")
    url = f"{API}/accounts/{alice.account.pk}/spaces?limit=2"
    first = client.get(url, **alice.auth).json()
    second = client.get(first["next"], **alice.auth).json()
    third = client.get(second["next"], **alice.auth).json()
    names = [s["name"] for page in (first, second, third) for s in page["items"]]
    assert names == ["alice-space", "s0", "s1", "s2", "s3"] and third["next"] is None
    assert client.get(f"{API}/accounts/{alice.account.pk}/spaces?limit=0", **alice.auth).status_code == 400
