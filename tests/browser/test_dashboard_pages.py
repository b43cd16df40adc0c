"""The dashboard's pages and the report's dtype chart in a real headless
Chromium against the live server: move between pages with the keyboard,
keep the focus on the page link while the list polls, and read bytes per
dtype on a report. Screenshots go to SHOTS_DIR."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser_support import PASSWORD, log_in
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from modelfactory import llama_config, llama_tensors, make_model

from cfm.accounts.models import Account, Membership, Role
from cfm.inspection import inspect
from cfm.registry.models import Registration, SourceKind, Status

pytestmark = pytest.mark.browser


def _owner(username: str):
    user = get_user_model().objects.create_user(username, password=PASSWORD)
    account = Account.objects.create(name=f"{username.title()}'s lab", plan="standard")
    Membership.objects.create(account=account, user=user, role=Role.OWNER)
    return user, account


def test_page_through_the_registrations_with_the_keyboard_while_the_list_polls(live_server, page, transactional_db,
                                                                                shot):
    user, account = _owner("nao")
    report = {"deployable": True, "configuration": "small", "checks": []}
    regs = Registration.objects.bulk_create(
        Registration(account=account, created_by=user, source_kind=SourceKind.HUB, source=f"acme/model-{i:03d}",
                     revision="main" if i % 3 == 0 else "", status=Status.DONE,
                     report=report if i % 4 else {"deployable": False, "configuration": None, "checks": []})
        for i in range(120))
    # One job still runs on page 2 (newest first: model-069 ... model-020), none on page 1.
    Registration.objects.filter(pk=regs[42].pk).update(status=Status.INSPECTING, report=None,
                                                        progress_step="reading_headers")
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, "nao")

    nav = page.get_by_role("navigation", name="Pages of registrations")
    assert "Page 1 of 3" in nav.inner_text() and page.locator("#registrations tbody tr").count() == 50
    assert page.locator("#registrations").get_attribute("hx-trigger") is None
    shot(page, "dashboard-page-1")

    nav.get_by_role("link", name="Next").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/?page=2")
    assert "Page 2 of 3" in nav.inner_text()
    assert page.locator("#registrations").get_attribute("hx-get").endswith("/dashboard/registrations/?page=2")

    # The poll swaps the whole list, its page links included: the focus stays on the link it was on.
    nav.get_by_role("link", name="Next").focus()
    with page.expect_response(lambda r: "/dashboard/registrations/?page=2" in r.url):
        pass
    page.wait_for_timeout(300)  # the swap settles
    assert page.evaluate("document.activeElement.id") == "regs-next"
    assert page.locator("#registrations tbody tr").count() == 50
    assert page.locator(f'tr[data-id="{regs[42].pk}"]').get_attribute("data-status") == "inspecting"
    shot(page, "dashboard-page-2-polling")

    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/?page=3")
    assert "Page 3 of 3" in nav.inner_text() and page.locator("#registrations tbody tr").count() == 20
    assert nav.get_by_role("link", name="Next").count() == 0
    shot(page, "dashboard-page-3")
    page.set_viewport_size({"width": 390, "height": 844})
    nav.scroll_into_view_if_needed()
    page.screenshot(path=str(Path(os.environ.get("SHOTS_DIR", "/tmp/shots")) / "dashboard-page-3-narrow.png"))


def test_the_report_chart_shows_bytes_per_dtype(live_server, page, transactional_db, tmp_path, shot):
    user, account = _owner("rin")
    cfg = llama_config(hidden=2048, layers=16, heads=32, kv_heads=8, intermediate=8192, vocab=128256)
    tensors = llama_tensors(cfg)
    for name, (_, shape) in list(tensors.items()):
        if name.endswith("norm.weight") or name == "model.embed_tokens.weight":
            tensors[name] = ("F32", shape)
    tensors["model.position_ids"] = ("I64", [1, 131072])
    report = inspect(str(make_model(tmp_path / "mixed", cfg, tensors, shards=2))).to_dict()
    reg = Registration.objects.create(account=account, created_by=user, source_kind=SourceKind.FOLDER,
                                      source="acme/llama-1b-mixed", status=Status.DONE, report=report,
                                      finished_at=timezone.now())
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, "rin")
    page.goto(live_server.url + reverse("registration", args=[reg.pk]))
    chart = page.locator('section[aria-labelledby="dtypes-title"]')
    rows = chart.locator(".row")
    assert [rows.nth(i).get_attribute("data-dtype") for i in range(rows.count())] == ["BF16", "F32", "I64"]
    text = chart.inner_text()
    assert "GB" in text and "tensors" in text and "served as 16-bit" in text
    chart.scroll_into_view_if_needed()
    shot(page, "report-dtype-page")
    shots = Path(os.environ.get("SHOTS_DIR", "/tmp/shots"))  # as the shot fixture
    chart.screenshot(path=str(shots / "report-dtype-chart.png"))
