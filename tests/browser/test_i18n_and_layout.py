"""In a real headless Chromium against the live server: the language switch
waits for a button press (a select that submitted on change switched the site
at the first arrow key), a reason of one 20,000-character word wraps inside
its card, and the Prepare page's texts follow its option and its failed
step. Screenshots, in English and Japanese, go to SHOTS_DIR."""
from __future__ import annotations

import pytest
from browser_support import PASSWORD, log_in
from django.utils import translation
from django.utils.translation import gettext
from quotafactory import llama_report, make_actor, make_registration

from cfm.accounts.models import ApiToken
from cfm.preparation.models import PrepareJob, PrepareStatus
from cfm.quota import services
from cfm.quota.models import LimitRequest, RequestStatus
from cfm.registry.models import Registration, SourceKind, Status
from cfm.textcaps import FREE_TEXT_MAX

pytestmark = pytest.mark.browser


def _actor(username: str):
    actor = make_actor(username)
    actor.user.set_password(PASSWORD)
    actor.user.save()
    return actor


def _switch(page, language: str) -> None:
    """Press the language's button with the keyboard and wait for the page in it."""
    page.locator(f'#langswitch button[lang="{language}"]').focus()
    page.keyboard.press("Enter")
    page.locator(f'html[lang="{language}"]').wait_for()


def _overflowing(page) -> list[str]:
    """Cards and notices whose content is wider than they are, and the page itself."""
    return page.evaluate("""() => {
        const wide = [...document.querySelectorAll('.card, .notice')]
            .filter(el => el.scrollWidth > el.clientWidth + 1)
            .map(el => (el.id || el.className) + ' ' + el.scrollWidth + '>' + el.clientWidth);
        if (document.documentElement.scrollWidth > window.innerWidth) {
            const out = [...document.querySelectorAll('body *')]
                .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8)
                .map(el => el.tagName + '.' + el.className + ':' + Math.round(el.getBoundingClientRect().right));
            wide.push('page, past its right edge: ' + out.join(' '));
        }
        return wide;
    }""")


def _layout_defects(page) -> list[str]:
    """What the QA audit found at 390 px: anything reaching past the viewport's
    right edge other than inside a .table-wrap that scrolls, and a button
    whose text takes more than one line."""
    return page.evaluate("""() => {
        const width = document.documentElement.clientWidth, found = [];
        const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
            + (typeof el.className === 'string' && el.className ? '.' + el.className.split(' ').join('.') : '');
        const shown = el => { const r = el.getBoundingClientRect();
                              return r.width > 0 && r.height > 0 && !el.closest('.visually-hidden'); };
        const scrollingWrap = el => {
            const wrap = el.parentElement && el.parentElement.closest('.table-wrap');
            return wrap && ['auto', 'scroll'].includes(getComputedStyle(wrap).overflowX)
                && wrap.getBoundingClientRect().right <= width + 1;
        };
        if (document.documentElement.scrollWidth > width)
            found.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + width);
        for (const el of document.body.querySelectorAll('*')) {
            if (shown(el) && el.getBoundingClientRect().right > width + 1 && !scrollingWrap(el))
                found.push('past the right edge: ' + name(el) + ' ' + Math.round(el.getBoundingClientRect().right));
        }
        for (const button of document.querySelectorAll('button, .btn')) {
            if (!shown(button)) continue;
            const range = document.createRange();
            range.selectNodeContents(button);
            const rects = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0);
            if (!rects.length) continue;
            const top = Math.min(...rects.map(r => r.top)), bottom = Math.max(...rects.map(r => r.bottom));
            if (bottom - top > 1.5 * Math.max(...rects.map(r => r.height)))
                found.push('a button on more than one line: ' + JSON.stringify(button.innerText));
        }
        return found;
    }""")


def _lines(page, text: str) -> list[int]:
    """The number of lines each shown occurrence of `text` takes: 1 when no
    word of it is broken and it is not wrapped."""
    return page.evaluate("""text => {
        const counts = [], walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (let at = node.data.indexOf(text); at >= 0; at = node.data.indexOf(text, at + 1)) {
                const range = document.createRange();
                range.setStart(node, at);
                range.setEnd(node, at + text.length);
                const rects = [...range.getClientRects()].filter(r => r.width > 0).sort((a, b) => a.top - b.top);
                if (!rects.length || node.parentElement.closest('.visually-hidden')) continue;
                let lines = 1;
                for (let i = 1; i < rects.length; i++)
                    if (rects[i].top > rects[i - 1].top + rects[i - 1].height / 2) lines++;
                counts.push(lines);
            }
        }
        return counts;
    }""", text)


def test_arrow_keys_on_the_language_switch_do_not_switch_only_a_pressed_button_does(live_server, page,
                                                                                      transactional_db, shot):
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/catalog/?q=llama")
    english = page.locator('#langswitch button[lang="en"]')
    japanese = page.locator('#langswitch button[lang="ja"]')
    assert english.get_attribute("aria-current") == "true" and japanese.get_attribute("aria-current") is None
    assert page.get_by_role("group", name="Language").get_by_role("button").count() == 2

    english.focus()
    for key in ("ArrowDown", "ArrowDown", "ArrowUp", "ArrowRight", "Home", "End"):
        page.keyboard.press(key)
    page.wait_for_timeout(500)
    assert page.locator("html").get_attribute("lang") == "en" and page.url.endswith("/catalog/?q=llama")

    page.keyboard.press("Tab")  # to 日本語, the next button
    assert page.evaluate("document.activeElement.lang") == "ja"
    shot(page, "langswitch-focus-en")
    page.keyboard.press("Enter")
    page.locator('html[lang="ja"]').wait_for()
    assert page.url.endswith("/catalog/?q=llama")  # `next`: the same page, now in Japanese
    assert japanese.get_attribute("aria-current") == "true" and english.get_attribute("aria-current") is None
    assert english.inner_text() == "English" and japanese.inner_text() == "日本語"
    shot(page, "langswitch-ja")
    english.focus()
    page.keyboard.press("Space")
    page.locator('html[lang="en"]').wait_for()


def test_a_reason_of_one_endless_word_wraps_inside_its_card(live_server, page, transactional_db, shot):
    owner = _actor("ren")
    staff = make_actor("sam", staff=True)
    LimitRequest.objects.create(account=owner.account, requested_by=owner.user, units=8, reason="x" * 20_000)
    denied = services.limit_request_create(user=owner.user, account=owner.account, units=9, reason="y" * 2000)
    # Free text is capped (cfm.textcaps): the longest answer and reason the services take.
    services.limit_request_deny(user=staff.user, request=denied, answer="z" * FREE_TEXT_MAX)
    services.deployment_request(user=owner.user, registration=make_registration(owner.account), space=owner.space,
                                serving_name="a" * 36)
    services.ledger_adjust(user=staff.user, account=owner.account, units=1, reason="w" * FREE_TEXT_MAX)
    page.set_default_timeout(15_000)
    log_in(page, live_server.url, "ren")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/quota/{owner.account.id}/usage/")
        assert LimitRequest.objects.filter(status=RequestStatus.PENDING).count() == 1
        assert _overflowing(page) == [], width
        assert _layout_defects(page) == [], width
        assert _lines(page, "Ren team") == [1]
        shot(page, f"usage-long-reason-{width}")
    _switch(page, "ja")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert _overflowing(page) == [], width
        assert _layout_defects(page) == [], width
        shot(page, f"usage-long-reason-ja-{width}")
    assert ">使用ユニット</text>" in page.locator("svg.gauge").inner_html()


def test_the_dashboard_keeps_words_whole_and_its_table_scrolls_on_a_phone(live_server, page, transactional_db,
                                                                         shot):
    owner = _actor("demo")
    assert owner.account.name == "Demo team"
    make_registration(owner.account)
    Registration.objects.create(account=owner.account, created_by=owner.user, source_kind=SourceKind.FOLDER,
                                source="granite-3.1-8b-instruct", status=Status.DONE,
                                report=llama_report(deployable=False))
    Registration.objects.create(account=owner.account, created_by=owner.user, source_kind=SourceKind.ARCHIVE,
                                source="mistral-7b-v0.3.tar.gz", status=Status.FAILED, error_code="not_a_model")
    with translation.override("ja"):
        hub_ja = gettext("Hub repository")
    page.set_default_timeout(15_000)
    log_in(page, live_server.url, "demo")
    for language, hub in (("en", "Hub repository"), ("ja", hub_ja)):
        if language == "ja":
            _switch(page, "ja")
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}/dashboard/")
            assert _layout_defects(page) == [], (language, width)
            # Every account name and source kind whole, on one line: in the table and in the account's card.
            assert _lines(page, "Demo team") == [1, 1, 1, 1], (language, width)
            assert _lines(page, hub) == [1], (language, width)
            assert _lines(page, "meta-llama/Meta-Llama-3-8B") == [1], (language, width)
            wrap = page.locator("#registrations .table-wrap")
            # Issue 10: on a phone the rows stack (the status column on screen), nothing scrolls sideways;
            # on a desktop the table has room for every column.
            assert not wrap.evaluate("el => el.scrollWidth > el.clientWidth"), (language, width)
            status = page.locator("#registrations td.status-cell").first
            assert status.evaluate("el => el.getBoundingClientRect().right <= document.documentElement.clientWidth")
            shot(page, f"dashboard-{language}-{width}")


def test_the_settings_page_with_a_new_token_fits_a_phone_and_its_buttons_stay_whole(live_server, page,
                                                                                   transactional_db, shot):
    owner = _actor("tao")
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, "tao")
    page.goto(f"{live_server.url}/accounts/settings/")
    for language in ("en", "ja"):
        if language == "ja":
            _switch(page, "ja")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.locator("#id_name").fill(f"deploy pipeline {language}")
        page.locator(".token-form button[type=submit]").click()
        page.locator("#new-token").wait_for()
        # Post/Redirect/Get: the page showing the token is a GET, which a reload repeats harmlessly.
        assert page.url == f"{live_server.url}/accounts/settings/"
        tokens = list(ApiToken.objects.filter(user=owner.user))
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            assert _layout_defects(page) == [], (language, width)
            assert _overflowing(page) == [], (language, width)
            assert all(_lines(page, f"{t.prefix}…") == [1] for t in tokens), (language, width)
            wrap = page.locator("#token-table").locator("xpath=..")
            scrolls = wrap.evaluate("el => el.scrollWidth > el.clientWidth")
            assert scrolls == (width == 390), (language, width)  # a desktop has room for the whole table
            shot(page, f"settings-new-token-{language}-{width}")
        page.reload()
        assert page.locator("#new-token").count() == 0
        assert ApiToken.objects.filter(user=owner.user).count() == len(tokens)


def test_the_prepare_page_says_what_the_cast_does_shows_a_failed_step_red_and_refuses_a_headers_only_folder(
        live_server, page, transactional_db, shot, monkeypatch, tmp_path):
    import json

    import cfm.preparation.extras as extras

    monkeypatch.setattr(extras, "_present", lambda module: True)  # the page as on a server with the extra
    owner = _actor("kai")
    report = dict(llama_report(deployable=False), preparation=["convert_weights_to_safetensors",
                                                               "generate_tokenizer_json"])
    reg = Registration.objects.create(account=owner.account, created_by=owner.user, source_kind=SourceKind.ARCHIVE,
                                      source="llama-bin.tar.gz", status=Status.DONE, report=report)
    PrepareJob.objects.create(registration=reg, account=owner.account, steps=report["preparation"],
                              status=PrepareStatus.FAILED, stage="generate_tokenizer_json",
                              error_code="tokenizer_failed",
                              error_message="the tokenizer files (tokenizer.model, tokenizer_config.json) could not "
                                            "be read or converted by LlamaTokenizer: they are corrupt, cut short or "
                                            "not LlamaTokenizer's format")
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, "kai")
    page.goto(f"{live_server.url}/models/{reg.pk}/prepare/")

    kept, cast = page.locator("#convert-detail"), page.locator("#convert-detail-cast")
    assert kept.is_visible() and not cast.is_visible()
    assert "keeps its dtype" in kept.inner_text()
    page.get_by_label("Cast 32-bit float weights to 16 bits").check()
    assert cast.is_visible() and not kept.is_visible() and "16-bit" in cast.inner_text()
    shot(page, "prepare-cast-on")
    page.get_by_label("Cast 32-bit float weights to 16 bits").uncheck()
    assert kept.is_visible() and not cast.is_visible()

    failed = page.locator(".step-failed")
    assert failed.count() == 1 and "Generating tokenizer.json" in failed.inner_text()
    assert page.locator(".steps .step-now").count() == 0
    # The failed colour of the status badges, not the blue of a step under way.
    colour = failed.evaluate("el => getComputedStyle(el).color")
    assert colour == page.locator("#job-status").evaluate("el => getComputedStyle(el).color") == "rgb(196, 38, 46)"
    assert "Preparation #1" in page.locator("#job-title").inner_text()
    assert "tiktoken" not in page.locator("#prepare-error").inner_text()
    shot(page, "prepare-failed-step")
    _switch(page, "ja")
    assert "16 ビット" not in page.locator("#convert-detail").inner_text()
    shot(page, "prepare-failed-step-ja")

    upload = tmp_path / "upload"
    (upload / "files").mkdir(parents=True)
    (upload / "manifest.json").write_text(json.dumps({
        "name": "llama", "sizes": {"config.json": 2, "model-00001-of-00002.safetensors": 5 * 10**9,
                                   "model-00002-of-00002.safetensors": 3 * 10**9},
        "stored": {"config.json": 2, "model-00001-of-00002.safetensors": 24_000,
                   "model-00002-of-00002.safetensors": 24_000}}))
    folder = Registration.objects.create(account=owner.account, created_by=owner.user, source_kind=SourceKind.FOLDER,
                                         source="llama", status=Status.DONE, report=report,
                                         upload_path=str(upload / "manifest.json"))
    page.goto(f"{live_server.url}/models/{folder.pk}/prepare/")
    assert page.locator("#prepare-start").count() == 0
    notice = page.locator("#prepare-unavailable")
    assert "model-00001-of-00002.safetensors" in notice.inner_text()
    assert notice.get_by_role("link").count() == 2
    shot(page, "prepare-folder-unavailable-ja")
    _switch(page, "en")
    assert "as an archive" in notice.inner_text()
    shot(page, "prepare-folder-unavailable")
    notice.get_by_role("link", name="as an archive").click()
    page.wait_for_url("**/models/new/?via=archive*")

    # Its report offers no Prepare button either, but says why, with a link to the explanation.
    for language in ("en", "ja"):
        page.goto(f"{live_server.url}/models/{folder.pk}/")
        if language == "ja":
            _switch(page, "ja")
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            assert page.locator(f'.verdict a[href="/models/{folder.pk}/prepare/"]').count() == 0
            note = page.locator("#prepare-unavailable-note")
            assert "model-00001-of-00002.safetensors" in note.inner_text()
            assert _layout_defects(page) == [], (language, width)
            shot(page, f"report-folder-no-prepare-{language}-{width}")
    page.locator("#prepare-unavailable-note a").click()
    page.wait_for_url(f"**/models/{folder.pk}/prepare/#prepare-unavailable")
    assert page.locator("#prepare-unavailable").is_visible()


def test_a_failed_hub_registration_the_deploy_form_and_the_survey_read_in_japanese(live_server, page,
                                                                                    transactional_db, shot):
    owner = _actor("mei")
    failed = Registration.objects.create(
        account=owner.account, created_by=owner.user, source_kind=SourceKind.HUB, source="org/missing",
        status=Status.FAILED, error_code="repo_not_found",
        error_message="no Hub repo org/missing on the Hub (if it is private, pass a token that can read it)")
    llama = make_registration(owner.account)
    page.set_default_timeout(15_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, "mei")

    page.goto(f"{live_server.url}/models/{failed.pk}/")
    failure = page.locator(".card.failed")
    assert "The Hub has no repository of that name." in failure.inner_text()
    shot(page, "registration-repo-not-found")
    _switch(page, "ja")
    text = failure.inner_text()
    assert "Hub にその名前のリポジトリーはありません。" in text and "もう一度登録してください" in text
    assert "local folder" not in text and "127.0.0.1" not in text
    shot(page, "registration-repo-not-found-ja")

    page.goto(f"{live_server.url}/quota/registrations/{llama.id}/deploy/")
    assert "a-z、0-9、_ のみ" in page.locator("#id_serving_name_helptext").inner_text()
    shot(page, "deploy-ja")

    page.goto(f"{live_server.url}/feedback/{owner.account.id}/survey/")
    page.get_by_label("Small", exact=True).check()
    messages = []
    for count in ("-1", "0"):
        page.locator("#id_count").fill(count)
        page.locator("form.survey-form button[type=submit]").click()
        page.locator("#id_count_error").wait_for()
        messages.append(page.locator("#id_count_error").inner_text())
    assert messages[0] == messages[1] and "1" in messages[0]
    shot(page, "survey-count-error-ja")
    _switch(page, "en")
    assert page.locator("#id_count").get_attribute("min") == "1"
    shot(page, "survey-en")
