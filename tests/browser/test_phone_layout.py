"""The pages on a phone (390 px) and a desktop (1280 px), in English and
Japanese, in a real Chromium: below 600 px the dashboard and the catalog
stack their rows (the status column and the configurations are on screen,
nothing scrolls sideways), the report's memory bars fit, and the deploy form
fits 390 px. Screenshots go to SHOTS_DIR; they were looked at."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser_support import PASSWORD, log_in, off_screen
from quotafactory import llama_report, make_actor, make_registration

from cfm.registry.models import Registration, SourceKind, Status

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots"))

GPU, SHARE, ALLOWANCE = 80_000_000_000, 72_000_000_000, 2 * 1024**3


def _memory(serving: int, per_token: int) -> dict:
    out = {}
    for key, gpus in (("small", 1), ("medium", 2), ("large", 4)):
        free = gpus * SHARE - serving - gpus * ALLOWANCE
        out[key] = {"gpus": gpus, "gpu_memory_bytes": gpus * GPU, "fits": free > 0, "free_bytes": free,
                    "kv_cache_tokens": free // per_token if free > 0 else 0}
    return {"kv_cache_bytes_per_token": per_token, "configurations": out}


def _report(**extra) -> dict:
    r = llama_report()
    r.update(verdict="ready", context_length=8192, memory=_memory(r["serving_bytes"], 131072))
    r.update(extra)
    return r


def _switch(page, language: str) -> None:
    page.locator(f'#langswitch button[lang="{language}"]').click()
    page.locator(f'html[lang="{language}"]').wait_for()


def _visible_in_viewport(page, selector: str) -> bool:
    return page.locator(selector).first.evaluate("""el => { const r = el.getBoundingClientRect();
        return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth + 1; }""")


def test_the_main_pages_fit_a_phone_and_a_desktop_in_both_languages(live_server, page, transactional_db, shot):
    owner = make_actor("phoebe")
    owner.user.set_password(PASSWORD)
    owner.user.save()
    ready = make_registration(owner.account, _report())
    Registration.objects.create(account=owner.account, created_by=owner.user, source_kind=SourceKind.FOLDER,
                                source="granite-3.1-8b-instruct", status=Status.DONE,
                                report=_report(verdict="prepare", preparation=["convert_weights_to_safetensors"]))
    Registration.objects.create(account=owner.account, created_by=owner.user, source_kind=SourceKind.HUB,
                                source="Qwen/Qwen3-8B", status=Status.DONE,
                                report=_report(verdict="uncertified", certified=False, model_type="qwen3"))
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, "phoebe")
    for language in ("en", "ja"):
        if language == "ja":
            _switch(page, "ja")
        for width in (390, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            where = (language, width)

            page.goto(f"{live_server.url}/dashboard/")
            assert (off := off_screen(page)) == [], (where, "; ".join(off))
            badges = page.locator("#registrations .status-cell .verdict-badge")
            assert badges.count() == 3, where
            for i in range(3):  # the status column is on screen, on a phone too
                assert badges.nth(i).evaluate(
                    "el => el.getBoundingClientRect().right <= document.documentElement.clientWidth"), where
            assert sorted(badges.nth(i).get_attribute("data-verdict") for i in range(3)) == [
                "prepare", "ready", "uncertified"]
            shot(page, f"phone-dashboard-{language}-{width}")

            page.goto(f"{live_server.url}/catalog/")
            assert (off := off_screen(page)) == [], (where, "; ".join(off))
            assert _visible_in_viewport(page, '#catalog-table tr[data-model-type="llama"] .size-large'), where
            assert _visible_in_viewport(page, '#configurations-table tr[data-configuration="large"] td'), where
            shot(page, f"phone-catalog-{language}-{width}")
            for part in ('#catalog-table tr[data-model-type="llama"]', "#sizes-title + .table-wrap"):
                page.locator(part).screenshot(
                    path=str(SHOTS / f"phone-catalog-{language}-{width}-{'row' if 'llama' in part else 'sizes'}.png"))

            page.goto(f"{live_server.url}/models/{ready.pk}/")
            assert (off := off_screen(page)) == [], (where, "; ".join(off))
            assert page.locator(".memory-row").count() == 3
            assert _visible_in_viewport(page, '.memory-row[data-configuration="large"] .memory-bar'), where
            shot(page, f"phone-report-{language}-{width}")
            page.locator("#memory").screenshot(path=str(SHOTS / f"phone-report-memory-{language}-{width}.png"))

            page.goto(f"{live_server.url}/quota/registrations/{ready.pk}/deploy/")
            shot(page, f"phone-deploy-{language}-{width}")
            assert (off := off_screen(page)) == [], (where, "; ".join(off))
            form = page.locator("form.deploy-form")
            assert form.evaluate("el => el.getBoundingClientRect().right") <= width, where


def test_the_deploy_forms_error_summary_takes_the_focus(live_server, page, transactional_db, shot):
    owner = make_actor("flo")
    owner.user.set_password(PASSWORD)
    owner.user.save()
    reg = make_registration(owner.account, _report())
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url, "flo")
    page.goto(f"{live_server.url}/quota/registrations/{reg.pk}/deploy/")
    page.locator("#id_serving_name").fill("Not Valid!")
    page.locator("#id_param_max_batch_size").fill("0")
    page.locator("form.deploy-form button[type=submit]").click()
    page.locator("[data-error-summary]").wait_for()
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    assert page.locator("#id_serving_name").get_attribute("aria-invalid") == "true"
    assert off_screen(page) == []
    shot(page, "phone-deploy-errors-390")


def test_a_chosen_sequence_length_updates_the_memory_card_in_place(live_server, page, transactional_db, shot):
    owner = make_actor("seq")
    owner.user.set_password(PASSWORD)
    owner.user.save()
    reg = make_registration(owner.account, _report())
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url, "seq")
    page.goto(f"{live_server.url}/models/{reg.pk}/")
    small = page.locator('.memory-row[data-configuration="small"] .kv-sequences')
    assert small.inner_text() == "200 sequences of 2,048 tokens at once."
    page.locator("#sequence-length").fill("8192")
    page.locator(".sequence-form button[type=submit]").click()
    page.wait_for_function("""() => document.querySelector(
        '.memory-row[data-configuration="small"] .kv-sequences').innerText.includes('8,192')""")
    assert small.inner_text() == "50 sequences of 8,192 tokens at once."
    assert page.url == f"{live_server.url}/models/{reg.pk}/"  # swapped in place, no reload
    assert page.locator("#sequence-length").input_value() == "8192"
    assert page.locator("#live-announce").inner_text() == ""  # the finished inspection is not announced again
    shot(page, "phone-report-sequence-8192")
