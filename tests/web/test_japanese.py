"""The pages read in Japanese when Japanese is asked for, and the catalogue
behind them is complete: every msgid translated, nothing fuzzy, the same
placeholders on both sides, and the compiled .mo in step with the .po.

The page tests cover strings that once stayed English: an alias makemessages
does not know (`_l`), a lazy string %-formatted at import (frozen in the
language of that moment), and a gettext call inside an f-string (which
xgettext never reads)."""
from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation
from quotafactory import llama, owner  # noqa: F401  (pytest fixtures)

from cfm import catalog
from cfm.quota import services
from cfm.registry.models import Registration, SourceKind, Status
from cfm.registry.views import JOB_ERRORS

JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}
LOCALE = Path(__file__).resolve().parents[2] / "locale" / "ja" / "LC_MESSAGES"


@pytest.mark.django_db
def test_a_failed_registration_explains_itself_in_japanese(client, owner):  # noqa: F811
    reg = Registration.objects.create(account=owner.account, created_by=owner.user, source_kind=SourceKind.HUB,
                                      source="org/missing", status=Status.FAILED, error_code="repo_not_found",
                                      error_message="no Hub repo org/missing on the Hub")
    client.force_login(owner.user)
    html = client.get(reverse("registration", args=[reg.pk]), **JA).content.decode()
    assert 'lang="ja"' in html
    assert "Hub にその名前のリポジトリーはありません。" in html
    assert "The Hub has no repository of that name." not in html
    assert "Check the organisation" not in html


def test_every_job_failure_explanation_has_a_japanese_translation():
    for code, pair in JOB_ERRORS.items():
        with translation.override("en"):
            english = [str(s) for s in pair]
        with translation.override("ja"):
            assert [str(s) for s in pair] != english and not set(map(str, pair)) & set(english), code


@pytest.mark.django_db
def test_the_deploy_form_explains_the_serving_name_in_japanese(client, owner, llama):  # noqa: F811
    client.force_login(owner.user)
    client.get(f"/quota/registrations/{llama.id}/deploy/")  # English first: nothing may stay frozen in it
    html = client.get(f"/quota/registrations/{llama.id}/deploy/", **JA).content.decode()
    assert f"a-z、0-9、_ のみ、{catalog.SERVING_NAME_MAX} 文字以内" in html
    assert "Only a-z, 0-9 and _" not in html
    english = client.get(f"/quota/registrations/{llama.id}/deploy/").content.decode()
    assert f"Only a-z, 0-9 and _, at most {catalog.SERVING_NAME_MAX} characters" in english


@pytest.mark.django_db
def test_the_usage_gauge_reads_in_japanese(client, owner, llama):  # noqa: F811
    services.deployment_request(user=owner.user, registration=llama, space=owner.space, configuration="small",
                                serving_name="gauge_dep")
    client.force_login(owner.user)
    html = client.get(f"/quota/{owner.account.id}/usage/", **JA).content.decode()
    gauge = html.split('<svg class="gauge')[1].split("</svg>")[0]
    assert ">使用ユニット</text>" in gauge and "units used" not in gauge


# --- the catalogue ------------------------------------------------------------------------------------------------
def _unquote(line: str) -> str:
    # A PO string's escapes (\n, \", \\, \t) are Python's.
    return ast.literal_eval(line[line.index('"'):])


def _entries(po: Path) -> list[dict]:
    """The .po's entries: flags, msgid, msgid_plural and msgstr[n], with
    continuation lines joined; obsolete (#~) entries left out."""
    entries, entry, key = [], None, None
    for raw in po.read_text(encoding="utf-8").splitlines() + [""]:
        line = raw.strip()
        if not line:
            if entry is not None:
                entries.append(entry)
            entry, key = None, None
            continue
        if line.startswith("#~"):
            entry, key = None, None
            continue
        if entry is None:
            entry = {"flags": set(), "msgstr": {}}
        if line.startswith("#,"):
            entry["flags"] |= {f.strip() for f in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if key == "msgstr" or key is None:
                raise AssertionError(f"a continuation line without its keyword: {raw}")
            if isinstance(key, int):
                entry["msgstr"][key] += _unquote(line)
            else:
                entry[key] += _unquote(line)
        else:
            keyword = line.split(" ", 1)[0]
            m = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
            key = int(m.group(1)) if m else 0 if keyword == "msgstr" else keyword
            if isinstance(key, int):
                entry["msgstr"][key] = _unquote(line)
            else:
                entry[key] = _unquote(line)
    return [e for e in entries if e.get("msgid")]  # the header has an empty msgid


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)[sdif]", text)) | set(re.findall(r"\{(\w+)\}", text))


def test_the_japanese_catalogue_is_complete_and_compiled():
    entries = _entries(LOCALE / "django.po")
    assert len(entries) > 800  # the parser read the file, not a fraction of it
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert fuzzy == [], f"fuzzy entries: {fuzzy[:5]}"
    empty = [e["msgid"] for e in entries if not e["msgstr"] or not all(e["msgstr"].values())]
    assert empty == [], f"untranslated: {empty[:5]}"
    for e in entries:
        if "python-format" in e["flags"] or "python-brace-format" in e["flags"]:
            wanted = _placeholders(e["msgid"]) | _placeholders(e.get("msgid_plural", ""))
            for s in e["msgstr"].values():
                assert _placeholders(s) == wanted, e["msgid"]

    with open(LOCALE / "django.mo", "rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    for e in entries:
        if "msgid_plural" in e:
            assert compiled.ngettext(e["msgid"], e["msgid_plural"], 1) == e["msgstr"][0], e["msgid"]
        else:
            assert compiled.gettext(e["msgid"]) == e["msgstr"][0], f"django.mo is older than django.po: {e['msgid']}"
