"""The Spaces page (owners create, rename, toggle the runtime, delete;
members only see) and the sign-up that leads a new account to its first
space. Three users: the owner, a member of another account (404), anonymous
(to the login page)."""
from __future__ import annotations

import pytest
from actors import member
from django.urls import reverse

from cfm.accounts.models import Space
from cfm.accounts.services import membership_add, space_create

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-enough-pass-phrase"


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(client):
    user, account = member("alice", password=PASSWORD)
    client.force_login(user)
    return user, account


def test_a_new_standard_sign_up_is_led_to_create_its_first_space(client):
    r = client.post(reverse("signup"), {"username": "dana", "password1": PASSWORD, "password2": PASSWORD,
                                        "create_account": "on", "account_name": "Dana Labs", "plan": "standard"})
    account = Space.account.field.related_model.objects.get(name="Dana Labs")
    assert r.status_code == 302 and r["Location"] == reverse("spaces", args=[account.pk]) + "?welcome=1"
    page = client.get(r["Location"]).content.decode()
    assert 'id="first-space"' in page and "create your first space" in page
    r = client.post(reverse("spaces", args=[account.pk]), {"new-name": "production", "new-runtime_instance": "on"})
    assert r.status_code == 302
    assert list(account.spaces.values_list("name", "runtime_instance")) == [("production", True)]
    page = client.get(reverse("spaces", args=[account.pk])).content.decode()
    assert 'id="first-space"' not in page and 'data-space="production"' in page


def test_the_dashboard_nudges_an_owner_without_a_space_and_stops_once_there_is_one(client, alice):
    user, account = alice
    page = client.get(reverse("dashboard")).content.decode()
    assert "first-space-nudge" in page and reverse("spaces", args=[account.pk]) in page
    space_create(account=account, name="lab")
    assert "first-space-nudge" not in client.get(reverse("dashboard")).content.decode()


def test_the_deploy_form_lists_the_space_just_created(client, alice):
    from quotafactory import make_registration

    user, account = alice
    registration = make_registration(account)
    client.post(reverse("spaces", args=[account.pk]), {"new-name": "fresh-space", "new-runtime_instance": "on"})
    page = client.get(reverse("quota:deploy", args=[registration.pk])).content.decode()
    assert "fresh-space" in page


def test_an_owner_renames_toggles_and_deletes_a_space(client, alice):
    user, account = alice
    space = space_create(account=account, name="lab")
    client.post(reverse("space_rename", args=[space.pk]), {"name": "prod"})
    client.post(reverse("space_runtime", args=[space.pk]), {"runtime_instance": "0"})
    space.refresh_from_db()
    assert (space.name, space.runtime_instance) == ("prod", False)
    r = client.post(reverse("space_rename", args=[space.pk]), {"name": ""}, follow=True)
    assert "A name has 1 to 120 characters." in r.content.decode()
    client.post(reverse("space_delete", args=[space.pk]))
    assert not account.spaces.exists()
    page = client.get(reverse("spaces", args=[account.pk])).content.decode()
    assert reverse("space_rename", args=[space.pk]) not in page


def test_deleting_a_space_with_a_deployment_is_refused_with_its_name(client, alice):
    from quotafactory import make_registration

    from cfm.quota import services

    user, account = alice
    space = space_create(account=account, name="lab")
    services.deployment_request(user=user, registration=make_registration(account), space=space,
                                serving_name="busy_one")
    r = client.post(reverse("space_delete", args=[space.pk]), follow=True)
    assert "busy_one" in r.content.decode() and account.spaces.filter(pk=space.pk).exists()


def test_a_member_sees_spaces_without_the_owner_actions_and_cannot_post_them(client, alice):
    owner, account = alice
    space = space_create(account=account, name="lab")
    carol, _theirs = member("carol", password=PASSWORD)
    membership_add(account=account, user=carol, role="member")
    client.force_login(carol)
    page = client.get(reverse("spaces", args=[account.pk])).content.decode()
    assert 'data-space="lab"' in page and reverse("space_delete", args=[space.pk]) not in page
    assert 'name="new-name"' not in page
    for name in ("space_rename", "space_delete"):
        r = client.post(reverse(name, args=[space.pk]), {"name": "hijacked"}, follow=True)
        assert "Only an owner" in r.content.decode()
    r = client.post(reverse("spaces", args=[account.pk]), {"new-name": "mine"})
    assert "Only an owner" in r.content.decode()
    space.refresh_from_db()
    assert space.name == "lab" and space.deleted_at is None and account.spaces.count() == 1


def test_a_stranger_gets_404_and_the_anonymous_the_login_page(client, alice):
    owner, account = alice
    space = space_create(account=account, name="lab")
    bob, _theirs = member("bob", password=PASSWORD)
    client.force_login(bob)
    assert client.get(reverse("spaces", args=[account.pk])).status_code == 404
    for name in ("space_rename", "space_runtime", "space_delete"):
        assert client.post(reverse(name, args=[space.pk]), {"name": "x"}).status_code == 404
    client.logout()
    assert client.get(reverse("spaces", args=[account.pk]))["Location"].startswith(reverse("login"))
    space.refresh_from_db()
    assert space.name == "lab" and space.deleted_at is None
