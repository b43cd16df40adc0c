"""The usage page's deployments on a phone (390 px), in English and
Japanese, in a real Chromium: below 600 px each deployment is a card (its
serving name on top, every cell named by its column, Delete at the foot),
nothing off screen nor scrolling sideways; at 1280 px it stays a table.
Screenshots go to SHOTS_DIR; they were looked at."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser_support import PASSWORD, log_in, off_screen
from quotafactory import make_actor, make_registration

from cfm.quota import services

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots"))


def _inside(locator) -> bool:
    return locator.evaluate("""el => { const r = el.getBoundingClientRect();
        return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth + 1; }""")


def test_the_usage_pages_deployments_stack_on_a_phone(live_server, page, transactional_db, shot):
    owner = make_actor("una")
    owner.user.set_password(PASSWORD)
    owner.user.save()
    names = ["llama_31_8b_instruct_production_e", "granite", "mixtral_8x7b_gptq_evaluation_long"]
    for i, name in enumerate(names):
        reg = make_registration(owner.account, source=f"some-organisation/a-rather-long-model-name-{i}-instruct")
        services.deployment_request(user=owner.user, registration=reg, space=owner.space, serving_name=name)
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, "una")
    url = f"{live_server.url}/quota/{owner.account.id}/usage/"
    labels = {"en": ["Status", "Model", "Configuration", "Units", "Space", "Created"],
              "ja": ["状態", "モデル", "構成", "ユニット", "スペース", "作成日"]}
    for language in ("en", "ja"):
        if language == "ja":
            page.locator('#langswitch button[lang="ja"]').click()
            page.locator('html[lang="ja"]').wait_for()
        for width in (390, 1280):
            where = (language, width)
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(url)
            table = page.locator("#deployments table.deps-table")
            rows = table.locator("tbody tr")
            assert rows.count() == 3, where
            shot(page, f"usage-deployments-{language}-{width}")
            table.screenshot(path=str(SHOTS / f"usage-table-{language}-{width}.png"))
            assert (off := off_screen(page)) == [], (where, "; ".join(off))
            if width == 390:
                # one card per deployment, one under the other, the header row out of sight
                assert rows.first.evaluate("el => getComputedStyle(el).display") == "block", where
                assert not table.locator("thead").is_visible() or table.locator("thead").evaluate(
                    "el => el.getBoundingClientRect().width <= 1"), where
                tops = [rows.nth(i).bounding_box()["y"] for i in range(3)]
                assert tops == sorted(tops) and len(set(tops)) == 3, where
                for i in range(3):
                    row = rows.nth(i)
                    for cell in ("td.stack-title code", "td.num", "td .size", "td.stack-actions button"):
                        assert _inside(row.locator(cell)), (where, i, cell)
                    shown = [row.locator("td[data-label]").nth(j).evaluate(
                        "el => getComputedStyle(el, '::before').content") for j in range(len(labels[language]))]
                    assert [s.strip('"') for s in shown] == labels[language], where
                rows.first.screenshot(path=str(SHOTS / f"usage-card-{language}.png"))
            else:
                assert rows.first.evaluate("el => getComputedStyle(el).display") == "table-row", where
                assert table.locator("thead").is_visible(), where


def test_the_prepare_pages_disk_figures_and_refusal_fit_a_phone(live_server, page, transactional_db, settings,
                                                                 tmp_path):
    """The Prepare page of a `.bin`-only model larger than the free disk: the
    download and disk figures, the refusal and the disabled button, at 390 and
    1280 px, in English and Japanese."""
    import shutil

    from modelfactory import LLAMA_TOKENIZER, llama_config, write_json

    from cfm.inspection import inspect
    from cfm.registry.models import Registration, SourceKind, Status

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"
    owner = make_actor("pia")
    owner.user.set_password(PASSWORD)
    owner.user.save()
    folder = tmp_path / "huge"
    folder.mkdir()
    write_json(folder / "config.json", llama_config())
    write_json(folder / "tokenizer.json", LLAMA_TOKENIZER)
    with open(folder / "pytorch_model.bin", "wb") as fh:
        fh.truncate(shutil.disk_usage(tmp_path).free // 2 + 10**9)
    reg = Registration.objects.create(account=owner.account, created_by=owner.user, source_kind=SourceKind.HUB,
                                      source="meta-llama/Meta-Llama-3-8B", status=Status.DONE,
                                      report=inspect(str(folder)).to_dict())
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, "pia")
    for language in ("en", "ja"):
        if language == "ja":
            page.locator('#langswitch button[lang="ja"]').click()
            page.locator('html[lang="ja"]').wait_for()
        for width in (390, 1280):
            where = (language, width)
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}/models/{reg.pk}/prepare/")
            assert page.locator("#prepare-disk").is_visible(), where
            assert page.locator("#prepare-disk-full").is_visible(), where
            assert page.locator("#prepare-start").is_disabled(), where
            assert (off := off_screen(page)) == [], (where, "; ".join(off))
            page.screenshot(path=str(SHOTS / f"prepare-disk-{language}-{width}.png"), full_page=True)
