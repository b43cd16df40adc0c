"""The dashboard's registrations, a page at a time: page boundaries, page
numbers people type by hand, the query string kept in the links, and the
polled fragment, which refreshes only the page on screen. Three users: the
owner, a member of another account (never sees the owner's rows, on any
page) and an anonymous visitor (sent to log in)."""
from __future__ import annotations

import re

import pytest
from actors import member
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cfm.registry.models import Registration, SourceKind, Status
from cfm.web.views import PAGE_SIZE

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return member("alice")


@pytest.fixture
def stranger():
    return member("bob")


def _registrations(account, user, n: int, prefix: str = "org/m", **fields) -> list[Registration]:
    """n finished registrations, created oldest first: the newest is f"{prefix}{n - 1:03d}"."""
    values = {"status": Status.DONE, "report": {"deployable": True, "configuration": "small", "checks": []}}
    values.update(fields)
    return Registration.objects.bulk_create(
        Registration(account=account, created_by=user, source_kind=SourceKind.HUB, source=f"{prefix}{i:03d}",
                     **values) for i in range(n))


def _rows(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-id="(\d+)"', html)]


def _sources(response) -> list[str]:
    return [r.source for r in response.context["registrations"]]


def _nav(html: str) -> str:
    match = re.search(r'<nav class="pagination".*?</nav>', html, re.S)
    assert match, "no pagination controls"
    return match.group(0)


def test_the_dashboard_shows_a_page_of_registrations_newest_first_then_the_next(client, owner):
    _registrations(owner[1], owner[0], 2 * PAGE_SIZE + 20)
    client.force_login(owner[0])
    first = client.get(reverse("dashboard"))
    assert _sources(first)[:2] == ["org/m119", "org/m118"] and len(_sources(first)) == PAGE_SIZE
    second = client.get(reverse("dashboard"), {"page": 2})
    assert _sources(second)[0] == "org/m069" and len(_sources(second)) == PAGE_SIZE
    last = client.get(reverse("dashboard"), {"page": 3})
    assert _sources(last)[0] == "org/m019" and _sources(last)[-1] == "org/m000" and len(_sources(last)) == 20
    seen = _sources(first) + _sources(second) + _sources(last)
    assert len(set(seen)) == 2 * PAGE_SIZE + 20  # every registration once, none twice


def test_the_first_page_offers_next_but_not_previous_and_says_which_page_it_is(client, owner):
    _registrations(owner[1], owner[0], 2 * PAGE_SIZE + 20)
    client.force_login(owner[0])
    nav = _nav(client.get(reverse("dashboard")).content.decode())
    assert 'aria-label="Pages of registrations"' in nav and "Page 1 of 3" in nav and "registrations 1–50 of 120" in nav
    assert 'id="regs-next"' in nav and f'href="{reverse("dashboard")}?page=2"' in nav
    assert 'id="regs-prev"' not in nav and 'aria-disabled="true"' in nav  # Previous shown, but not a link


def test_the_last_page_offers_previous_but_not_next(client, owner):
    _registrations(owner[1], owner[0], 2 * PAGE_SIZE + 20)
    client.force_login(owner[0])
    nav = _nav(client.get(reverse("dashboard"), {"page": 3}).content.decode())
    assert "Page 3 of 3" in nav and "registrations 101–120 of 120" in nav
    assert f'href="{reverse("dashboard")}?page=2"' in nav and 'id="regs-prev"' in nav and 'id="regs-next"' not in nav


@pytest.mark.parametrize("n,paged", [(PAGE_SIZE - 1, False), (PAGE_SIZE, False), (PAGE_SIZE + 1, True)])
def test_the_page_controls_appear_only_when_the_registrations_do_not_fit_on_one_page(client, owner, n, paged):
    _registrations(owner[1], owner[0], n)
    client.force_login(owner[0])
    r = client.get(reverse("dashboard"))
    assert len(_sources(r)) == min(n, PAGE_SIZE)
    assert ('class="pagination"' in r.content.decode()) is paged


@pytest.mark.parametrize("page", ["4", "999999", "9" * 30])
def test_a_page_beyond_the_end_shows_the_last_page(client, owner, page):
    _registrations(owner[1], owner[0], 2 * PAGE_SIZE + 20)
    client.force_login(owner[0])
    r = client.get(reverse("dashboard"), {"page": page})
    assert r.status_code == 200 and r.context["page_obj"].number == 3
    assert _sources(r)[-1] == "org/m000" and "Page 3 of 3" in r.content.decode()


@pytest.mark.parametrize("page", ["abc", "", "0", "-1", "1.5", "2e3", " ", "\x00", "9" * 5000])
def test_a_page_that_is_not_a_positive_whole_number_shows_the_first_page(client, owner, page):
    _registrations(owner[1], owner[0], 2 * PAGE_SIZE + 20)
    client.force_login(owner[0])
    for name in ("dashboard", "dashboard_registrations"):
        r = client.get(reverse(name), {"page": page})
        assert r.status_code == 200 and r.context["page_obj"].number == 1
        assert _sources(r)[0] == "org/m119"


def test_an_account_without_registrations_shows_the_empty_state_on_any_page(client, owner):
    client.force_login(owner[0])
    for page in ("1", "2", "abc"):
        html = client.get(reverse("dashboard"), {"page": page}).content.decode()
        assert "No models yet." in html and 'class="pagination"' not in html


def test_the_page_links_keep_the_rest_of_the_query_string(client, owner):
    _registrations(owner[1], owner[0], 2 * PAGE_SIZE + 20)
    client.force_login(owner[0])
    html = client.get(reverse("dashboard") + "?page=2&status=done&q=org%2Fm").content.decode()
    nav = _nav(html)
    assert f'href="{reverse("dashboard")}?page=1&amp;status=done&amp;q=org%2Fm"' in nav
    assert f'href="{reverse("dashboard")}?page=3&amp;status=done&amp;q=org%2Fm"' in nav


def test_a_stranger_never_sees_another_accounts_rows_on_any_page(client, owner, stranger):
    mine = {r.pk for r in _registrations(owner[1], owner[0], PAGE_SIZE + 10, prefix="org/alice-")}
    theirs = {r.pk for r in _registrations(stranger[1], stranger[0], 2 * PAGE_SIZE + 5, prefix="org/bob-")}
    for user, own, total in ((owner[0], mine, PAGE_SIZE + 10), (stranger[0], theirs, 2 * PAGE_SIZE + 5)):
        client.force_login(user)
        shown = set()
        for page in ("1", "2", "3", "4", "999", "abc"):
            for name in ("dashboard", "dashboard_registrations"):
                r = client.get(reverse(name), {"page": page})
                rows = _rows(r.content.decode())
                assert rows and set(rows) <= own, (user.username, page, name)
                assert r.context["page_obj"].paginator.count == total
                shown.update(rows)
        assert shown == own  # and every page together shows all of the user's own


@pytest.mark.parametrize("name", ["dashboard", "dashboard_registrations"])
def test_an_anonymous_visitor_is_sent_to_log_in_from_any_page(client, owner, name):
    _registrations(owner[1], owner[0], PAGE_SIZE + 10)
    r = client.get(reverse(name), {"page": 2})
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
    assert "org/m" not in r.content.decode()


def test_the_polled_fragment_polls_the_page_on_screen_and_only_while_a_job_on_it_runs(client, owner):
    regs = _registrations(owner[1], owner[0], 2 * PAGE_SIZE + 20)
    running = regs[60]  # on page 2 (rows 51-100, newest first: org/m069 ... org/m020)
    Registration.objects.filter(pk=running.pk).update(status=Status.INSPECTING, report=None,
                                                       progress_step="reading_headers")
    client.force_login(owner[0])
    assert "hx-trigger" not in client.get(reverse("dashboard")).content.decode()  # page 1: nothing runs
    page2 = client.get(reverse("dashboard"), {"page": 2}).content.decode()
    poll_url = f'hx-get="{reverse("dashboard_registrations")}?page=2"'
    assert poll_url in page2 and 'hx-trigger="every 2s"' in page2
    frag = client.get(reverse("dashboard_registrations"), {"page": 2})
    html = frag.content.decode()
    assert poll_url in html and "Reading safetensors headers" in html
    assert set(_rows(html)) == {r.pk for r in regs[20:70]}  # this page's rows, not the 120
    assert "<html" not in html and html.lstrip().startswith('<div id="registrations"')

    Registration.objects.filter(pk=running.pk).update(status=Status.DONE, report={"deployable": False})
    html = client.get(reverse("dashboard_registrations"), {"page": 2}).content.decode()
    assert "hx-trigger" not in html and "Not deployable" in html and 'id="regs-prev"' in html


def test_a_poll_beyond_the_end_keeps_polling_the_last_page_by_its_real_number(client, owner):
    regs = _registrations(owner[1], owner[0], PAGE_SIZE + 10)
    Registration.objects.filter(pk=regs[0].pk).update(status=Status.QUEUED, report=None)  # the oldest: page 2
    client.force_login(owner[0])
    # e.g. rows were deleted while the page was open: page 7 no longer exists
    html = client.get(reverse("dashboard_registrations"), {"page": 7}).content.decode()
    assert f'hx-get="{reverse("dashboard_registrations")}?page=2"' in html and regs[0].pk in _rows(html)


def test_the_polled_fragment_keeps_the_query_string_of_the_page(client, owner):
    regs = _registrations(owner[1], owner[0], 10)
    Registration.objects.filter(pk=regs[-1].pk).update(status=Status.FETCHING, report=None)
    client.force_login(owner[0])
    html = client.get(reverse("dashboard") + "?status=done").content.decode()
    assert f'hx-get="{reverse("dashboard_registrations")}?status=done&amp;page=1"' in html


@pytest.mark.parametrize("name,most", [("dashboard", 8), ("dashboard_registrations", 5)])
def test_a_full_page_costs_as_many_queries_as_a_short_one(client, owner, stranger, name, most):
    # The fragment: session, user, the COUNT and the page's rows; the page adds the account cards.
    # 120 rows: page 1 and 2 hold 50, page 3 holds 20. A query per row would differ by 30.
    _registrations(owner[1], owner[0], 2 * PAGE_SIZE + 20)
    regs = _registrations(stranger[1], stranger[0], 5)
    Registration.objects.filter(pk=regs[0].pk).update(status=Status.INSPECTING, report=None)
    Registration.objects.filter(account=owner[1], source__in=["org/m110", "org/m010"]).update(
        status=Status.INSPECTING, report=None, progress_step="checking")
    client.force_login(owner[0])
    counts = {}
    for page in (1, 3):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(name), {"page": page}).status_code == 200
        counts[page] = len(queries)
    assert counts[1] == counts[3] <= most, counts
