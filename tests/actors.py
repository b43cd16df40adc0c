"""Three users for permission tests (healthchecks' alice/bob/charlie):
alice owns the objects under test, bob is a member of another account (a
stranger: 404), and the anonymous client has no token (401).

    from actors import alice, bob  # noqa: F401  (pytest fixtures)
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass
class Actor:
    user: object
    token: str
    account: object

    @property
    def auth(self) -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}


def member(username: str, plan: str = "standard", password: str | None = None) -> tuple:
    """(user, account): a user who owns an account of `plan`, nothing more
    (no space, no token), for the page tests that log in."""
    from django.contrib.auth import get_user_model

    from cfm.accounts.models import Account, Membership, Role

    user = get_user_model().objects.create_user(username, password=password)
    account = Account.objects.create(name=f"{username}'s team", plan=plan)
    Membership.objects.create(account=account, user=user, role=Role.OWNER)
    return user, account


def make_actor(username: str, plan: str = "standard", account_name: str | None = None) -> Actor:
    from django.contrib.auth import get_user_model

    from cfm.accounts.services import account_create, space_create
    from cfm.accounts.tokens import token_create

    user = get_user_model().objects.create_user(username)  # no password: no slow hashing, API tokens only
    account = account_create(name=account_name or f"{username}'s team", plan=plan, owner=user)
    space_create(account=account, name=f"{username}-space", runtime_instance=True)
    _, raw = token_create(user=user, name="tests")
    return Actor(user, raw, account)


@pytest.fixture
def alice(db):
    """The owner of the objects under test."""
    return make_actor("alice")


@pytest.fixture
def bob(db):
    """A member of another account: a stranger to alice's objects (404)."""
    return make_actor("bob")


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


