"""The ledger keeps who acted when that user is deleted (finding 4 of issue
11): the entry keeps the username; the admin can still delete the user."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client
from quotafactory import make_actor, make_registration

from cfm.quota import services
from cfm.quota.models import EntryKind, LedgerEntry


def test_deleting_a_user_keeps_their_name_on_their_entries(owner, llama, staff):
    out = services.deployment_request(user=owner.user, registration=llama, space=owner.space,
                                      configuration="small", serving_name="keep_me")
    services.deployment_delete(user=owner.user, deployment=out.deployment)
    services.ledger_adjust(user=staff.user, account=owner.account, units=2, reason="pilot")
    owner.user.delete()
    entries = {e.kind: e for e in LedgerEntry.objects.filter(account=owner.account)}
    assert entries[EntryKind.RESERVE].actor is None and entries[EntryKind.RESERVE].actor_name == "alice"
    assert entries[EntryKind.RELEASE].actor_name == "alice"
    assert entries[EntryKind.ADJUST].actor_name == "sam"


def test_the_admin_deletes_a_user_and_the_ledger_shows_who_acted(owner, llama, db):
    services.deployment_request(user=owner.user, registration=llama, space=owner.space, configuration="small",
                                serving_name="keep_me")
    root = get_user_model().objects.create_superuser("root", password="x")
    c = Client()
    c.force_login(root)
    r = c.post(f"/admin/auth/user/{owner.user.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302 and not get_user_model().objects.filter(pk=owner.user.pk).exists()
    page = c.get("/admin/quota/ledgerentry/").content.decode()
    assert "alice (deleted user)" in page


def test_the_username_is_the_one_at_the_time_of_the_entry(db):
    actor = make_actor("olga")
    reg = make_registration(actor.account)
    services.deployment_request(user=actor.user, registration=reg, space=actor.space, configuration="small",
                                serving_name="olga_one")
    actor.user.username = "olga_renamed"
    actor.user.save()
    assert LedgerEntry.objects.get(account=actor.account).actor_name == "olga"
