"""The registration flow in a real headless Chromium, against the live
server, a real Celery worker on the real Redis (tests/browser/conftest.py)
and the local Hub: log in, register a folder (headers only, proven by the
request size) and a Hub repo id, watch the reports appear, read a failed
check's remedy, then read the report in Japanese."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from modelfactory import LLAMA3_8B, llama_tensors, make_model, make_tiny_real

from cfm.accounts.models import Account, Membership, Role
from cfm.registry.models import Registration

pytestmark = pytest.mark.browser
PASSWORD = "browser-pass-phrase-long"


def test_register_by_folder_and_repo_id_watch_the_reports_and_read_them_in_japanese(
        worker, live_server, page, tmp_path, shot):
    user = get_user_model().objects.create_user("mika", password=PASSWORD)
    account = Account.objects.create(name="Mika's lab", plan="standard")
    Membership.objects.create(account=account, user=user, role=Role.OWNER)
    # 16 GB of weights on disk, sparse: only the headers are real bytes.
    big = make_model(tmp_path / "llama-8b-mlx", LLAMA3_8B, llama_tensors(LLAMA3_8B), shards=2,
                     metadata={"format": "mlx"})
    on_disk = sum(p.stat().st_size for p in big.iterdir())
    worker.hub.add_repo("acme/tiny-llama", make_tiny_real(tmp_path / "tiny"))

    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("mika")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/")

    # 1. A local folder: the browser sends headers and small files only.
    page.get_by_role("link", name="Register a model").first.click()
    page.get_by_role("tab", name="Local folder").click()
    page.set_input_files("#folder-input", str(tmp_path))  # the parent, by mistake
    page.locator("#folder-hint").wait_for()
    assert "choose that folder instead" in page.locator("#folder-hint").inner_text()
    page.set_input_files("#folder-input", str(big))
    summary = page.locator("#folder-summary")
    summary.wait_for()
    assert int(summary.get_attribute("data-total")) == on_disk > 15e9
    assert int(summary.get_attribute("data-upload")) < 100_000
    assert page.locator("#folder-rows tr[data-how=header]").count() == 2
    assert page.locator("#folder-hint").is_hidden()
    shot(page, "browser-register-folder")
    with page.expect_request(lambda r: r.method == "POST" and "/models/new/" in r.url) as sent:
        page.get_by_role("button", name="Register folder").click()
    assert int(sent.value.header_value("content-length")) < 150_000  # of a 16 GB folder
    page.wait_for_url("**/models/*/")
    stored = Registration.objects.get(account=account)
    assert sum(p.stat().st_size for p in Path(stored.upload_path).parent.rglob("*") if p.is_file()) < 150_000
    page.locator("#report").wait_for()  # htmx polled the page until the job ended
    assert page.locator("#registration-live").get_attribute("hx-trigger") is None
    failed = page.locator('[data-check="safetensors_metadata"]')
    assert failed.get_attribute("data-status") == "fail"
    assert "fix_safetensors_metadata" in failed.locator(".remedy").inner_text()
    assert "refuse" in page.locator(".verdict h2").inner_text()
    shot(page, "browser-report-folder")
    folder_url = page.url

    # 2. A Hub repo id, through the local Hub.
    page.goto(f"{live_server.url}/models/new/")
    page.get_by_label("Hub repo id").fill("acme/tiny-llama")
    page.get_by_role("button", name="Inspect repository").click()
    page.wait_for_url("**/models/*/")
    page.locator("#report").wait_for()
    assert page.locator("#reg-status").inner_text().strip() == "Deployable"
    shot(page, "browser-report-hub")

    # 3. An archive, sent with a progress bar.
    archive = shutil.make_archive(str(tmp_path / "tiny-llama"), "zip", tmp_path, "tiny")
    page.goto(f"{live_server.url}/models/new/?via=archive")
    page.set_input_files("#id_archive-archive", archive)
    page.get_by_role("button", name="Upload and inspect").click()
    page.wait_for_url("**/models/*/")
    page.locator("#report").wait_for()
    assert page.locator("#reg-status").inner_text().strip() == "Deployable"

    # 4. The dashboard: all three, with their badges, and no more polling.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    rows = page.locator("#registrations tbody tr")
    assert rows.count() == 3 and Registration.objects.filter(account=account).count() == 3
    assert page.locator("#registrations").get_attribute("hx-trigger") is None
    shot(page, "browser-dashboard")

    # 5. The same report in Japanese.
    page.goto(folder_url)
    page.locator("#langswitch").get_by_role("button", name="日本語").click()
    page.wait_for_load_state()
    page.locator("html[lang=ja]").wait_for()
    assert "このままではプラットフォームに拒否されます" in page.locator(".verdict h2").inner_text()
    remedy = page.locator('[data-check="safetensors_metadata"] .remedy').inner_text()
    assert "ヘッダーだけを" in remedy and "fix_safetensors_metadata" in remedy
    shot(page, "browser-report-ja")
