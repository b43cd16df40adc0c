"""Sign-up, log in, the settings page's API tokens, the dashboard and the
report filters."""
from __future__ import annotations

import pytest
from actors import member
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape

from cfm.accounts import tokens
from cfm.accounts.models import Account, ApiToken, Membership, Role
from cfm.accounts.tokens import token_create, token_seal, token_unseal, token_user
from cfm.accounts.views import NEW_TOKEN_SESSION_KEY
from cfm.registry import presenters
from cfm.registry.models import Registration, SourceKind, Status
from cfm.web.templatetags import cfm_tags

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-enough-pass-phrase"


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_signup_creates_the_user_and_an_account_they_own_on_the_chosen_plan(client):
    r = client.post(reverse("signup"), {"username": "dana", "email": "", "password1": PASSWORD,
                                        "password2": PASSWORD, "create_account": "on", "account_name": "Dana Labs",
                                        "plan": "essentials"})
    assert r.status_code == 302 and r["Location"] == reverse("dashboard")
    m = Membership.objects.get(user__username="dana")
    assert (m.role, m.account.name, m.account.plan) == (Role.OWNER, "Dana Labs", "essentials")
    assert client.get(reverse("dashboard")).status_code == 200  # logged in


def test_signup_without_an_account_creates_only_the_user(client):
    client.post(reverse("signup"), {"username": "erin", "password1": PASSWORD, "password2": PASSWORD,
                                    "plan": "standard"})
    assert get_user_model().objects.filter(username="erin").exists() and not Account.objects.exists()


def test_signup_errors_are_tied_to_their_fields_for_screen_readers(client):
    r = client.post(reverse("signup"), {"username": "", "password1": "x", "password2": "y",
                                        "create_account": "on", "account_name": ""})
    html = r.content.decode()
    assert r.status_code == 200 and not get_user_model().objects.exists()
    assert 'role="alert"' in html
    for name in ("username", "password2", "account_name"):
        tag = html.split(f'name="{name}"')[1].split(">")[0]
        assert 'aria-invalid="true"' in tag and f"id_{name}_error" in tag
        assert f'id="id_{name}_error"' in html
    assert '<label for="id_account_name">' in html


def test_login_page_and_anonymous_redirects(client):
    assert 'name="username"' in client.get(reverse("login")).content.decode()
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("login"))
    assert client.get(reverse("settings"))["Location"].startswith(reverse("login"))
    user, _ = member("frank", password=PASSWORD)
    r = client.post(reverse("login"), {"username": "frank", "password": PASSWORD})
    assert r["Location"] == reverse("dashboard")


def _shown_token(html: str) -> str:
    return html.split('id="new-token" type="text" readonly value="')[1].split('"')[0]


def test_an_api_token_is_shown_once_works_and_can_be_revoked(client):
    user, _ = member("gina", password=PASSWORD)
    client.force_login(user)
    html = client.post(reverse("settings"), {"name": "CI", "expires_in": "30"}, follow=True).content.decode()
    raw = _shown_token(html)
    assert raw.startswith("cfm_") and token_user(raw) == user
    token = ApiToken.objects.get()
    assert token.expires_at is not None and token.key_hash != raw
    assert raw not in client.get(reverse("settings")).content.decode()  # shown once
    client.post(reverse("token_revoke", args=[token.pk]))
    assert token_user(raw) is None


def test_creating_a_token_redirects_and_a_reload_neither_shows_it_again_nor_creates_another(client):
    user, _ = member("gwen", password=PASSWORD)
    client.force_login(user)
    created = client.post(reverse("settings"), {"name": "CI", "expires_in": "30"})
    assert created.status_code == 302 and created["Location"] == reverse("settings")
    assert ApiToken.objects.count() == 1
    stored = [(s.session_data, str(s.get_decoded())) for s in Session.objects.all()]

    shown = client.get(reverse("settings"))
    raw = _shown_token(shown.content.decode())
    assert raw.startswith("cfm_") and token_user(raw) == user
    assert "no-store" in shown["Cache-Control"]  # the page with the token is not cached anywhere
    # It crossed the redirect in the session (a database row) sealed, never readable, and it is gone from it now.
    assert stored and all(raw not in data and raw not in decoded for data, decoded in stored)
    assert NEW_TOKEN_SESSION_KEY not in client.session
    assert all(raw not in str(s.get_decoded()) for s in Session.objects.all())
    assert raw not in str(ApiToken.objects.values().get())

    for _ in range(2):  # reloads: a GET, which shows no token and creates none
        again = client.get(reverse("settings")).content.decode()
        assert 'id="new-token"' not in again and raw not in again
    assert ApiToken.objects.count() == 1


def test_a_token_form_with_errors_creates_nothing_and_shows_the_errors(client):
    user, _ = member("gail", password=PASSWORD)
    client.force_login(user)
    r = client.post(reverse("settings"), {"name": "", "expires_in": "30"})
    assert r.status_code == 200 and 'aria-invalid="true"' in r.content.decode()
    assert not ApiToken.objects.exists() and 'id="new-token"' not in r.content.decode()


def test_a_sealed_token_is_shown_only_to_its_owner_and_only_while_fresh(client, monkeypatch):
    user, _ = member("gus", password=PASSWORD)
    other, _ = member("gil", password=PASSWORD)
    token, raw = token_create(user=other, name="theirs")
    client.force_login(user)
    session = client.session
    session[NEW_TOKEN_SESSION_KEY] = {"id": token.pk, "sealed": token_seal(raw)}  # another user's token id
    session.save()
    assert raw not in client.get(reverse("settings")).content.decode()

    mine, raw = token_create(user=user, name="mine")
    sealed = token_seal(raw)
    assert token_unseal(sealed) == raw and token_unseal(sealed[:-2] + "xx") is None
    monkeypatch.setattr(tokens, "SEAL_SECONDS", -1)  # older than the seal lasts
    assert token_unseal(sealed) is None
    session = client.session
    session[NEW_TOKEN_SESSION_KEY] = {"id": mine.pk, "sealed": sealed}
    session.save()
    assert raw not in client.get(reverse("settings")).content.decode()


def test_another_users_token_cannot_be_revoked(client):
    user, _ = member("hank", password=PASSWORD)
    other, _ = member("ivy", password=PASSWORD)
    token = ApiToken.objects.create(user=other, prefix="cfm_x", key_hash="h")
    client.force_login(user)
    assert client.post(reverse("token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_dashboard_lists_only_the_users_registrations_and_polls_only_while_one_runs(client):
    user, account = member("jack", password=PASSWORD)
    other, other_account = member("kate", password=PASSWORD)
    mine = Registration.objects.create(account=account, created_by=user, source_kind=SourceKind.HUB,
                                       source="org/mine", status=Status.INSPECTING)
    Registration.objects.create(account=other_account, created_by=other, source_kind=SourceKind.HUB,
                                source="org/theirs", status=Status.QUEUED)
    client.force_login(user)
    html = client.get(reverse("dashboard")).content.decode()
    assert "org/mine" in html and "org/theirs" not in html
    assert 'hx-trigger="every 2s"' in html and escape(account.name) in html
    mine.status, mine.report = Status.DONE, {"deployable": True, "configuration": "small", "checks": []}
    mine.save()
    frag = client.get(reverse("dashboard_registrations")).content.decode()
    assert "hx-trigger" not in frag and "Deployable" in frag and "size-small" in frag


def test_the_dashboard_reads_the_list_in_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    user, account = member("leo", password=PASSWORD)
    for i in range(8):
        Registration.objects.create(account=account, created_by=user, source_kind=SourceKind.HUB,
                                    source=f"org/m{i}", status=Status.DONE, report={"deployable": i % 2 == 0})
    client.force_login(user)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("dashboard")).status_code == 200


def test_a_check_renders_from_its_key_and_params_in_the_readers_language():
    check = {"id": "safetensors_metadata", "status": "fail", "message_key": "safetensors_metadata.other",
             "params": {"file": "model.safetensors", "format": "mlx"}, "message": "english", "remedy": "english"}
    assert cfm_tags.check_message(check) == 'model.safetensors has __metadata__ format "mlx", not "pt".'
    assert "fix_safetensors_metadata" in cfm_tags.check_remedy(check)
    with translation.override("ja"):
        assert "model.safetensors" in cfm_tags.check_message(check)
        assert cfm_tags.check_message(check) != 'model.safetensors has __metadata__ format "mlx", not "pt".'
    # A stored report from before message keys existed: its English text.
    assert cfm_tags.check_message({"status": "pass", "message": "old text"}) == "old text"


def test_sizes_and_counts_read_as_people_write_them():
    assert cfm_tags.filesize(16_060_522_496) == "16.1 GB"
    assert cfm_tags.filesize(512) == "512 B"
    assert cfm_tags.bignum(8_030_261_248) == "8.03B"
    assert cfm_tags.percent(1, 4) == 25 and cfm_tags.percent(3, 0) == 0
    bars = presenters.dtype_bars({"dtypes": {"BF16": 200, "F32": 50}})  # chart building: a presenter
    assert [(b["dtype"], b["width"]) for b in bars] == [("BF16", 100), ("F32", 25)]


def test_a_malformed_header_reason_is_translated_too():
    check = {"id": "safetensors_header", "status": "fail", "message_key": "safetensors_header.fail",
             "params": {"file": "model.safetensors", "reason": "the header is not valid JSON.",
                        "reason_key": "header_not_json", "reason_params": {}}}
    english = "The header of model.safetensors is malformed: the header is not valid JSON."
    assert cfm_tags.check_message(check) == english
    with translation.override("ja"):
        assert "ヘッダーが正しい JSON ではありません" in cfm_tags.check_message(check)


def test_the_account_cards_count_every_registration_of_the_account(client):
    user, account = member("mona", password=PASSWORD)
    for status, report in ((Status.DONE, {"deployable": True}), (Status.DONE, {"deployable": False}),
                           (Status.QUEUED, None), (Status.FAILED, None)):
        Registration.objects.create(account=account, created_by=user, source_kind=SourceKind.HUB,
                                    source=f"org/{status}-{bool(report and report['deployable'])}", status=status,
                                    report=report)
    client.force_login(user)
    card = client.get(reverse("dashboard")).context["accounts"][0]
    assert card["counts"]["total"] == 4 and card["counts"]["deployable"] == 1 and card["counts"]["active"] == 1
