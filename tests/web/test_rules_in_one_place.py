"""Every platform number, name and threshold comes from cfm.catalog (or the
administrators' tables seeded from it): a rule literal written anywhere else
in code, templates or scripts fails here, and the pages follow the live
limit and unit costs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from cfm import catalog
from cfm.accounts.models import Plan
from cfm.quota.models import Configuration, QuotaSettings, UnitCost

ROOT = Path(__file__).resolve().parents[2]

#: What a copy of a rule looks like. Each pattern names the rule it copies.
RULE_LITERALS = {
    "the rope_scaling runtime version": r"4\.43",
    "a sizing bound (26B/53B/106B)": r"\b(26|53|106)(e9|_000_000_000|000000000)\b",
    "GPU memory (80 GB / 72 GB usable)": r"\b(80|72)(e9|_000_000_000|000000000)\b",
    "a software specification's name": r"watsonx-(cfm-caikit|tsfm-runtime)-\d",
    "a hardware request size": r"\bgpu_[sml]\b",
    "the default limit's examples": r"\b\d+ (Small|Medium|Large)\b",
    "a plan's name": r"[\"'](lite|essentials)[\"']",
    "a unit cost": r"[\"'](small|medium|large|extra_large)[\"']\s*:\s*\d",
    "the default limit": r"DEFAULT_LIMIT_UNITS[\"']?\s*,\s*\d",
}


def _sources():
    for base, pattern in (("cfm", "*.py"), ("templates", "*.html"), ("static/js", "*.js"), ("scripts", "*")):
        for path in sorted((ROOT / base).rglob(pattern)):
            rel = path.relative_to(ROOT).as_posix()
            if not path.is_file() or rel.startswith("cfm/catalog/") or "/migrations/" in rel:
                continue
            yield rel, path.read_text("utf-8", errors="replace")


def test_no_rule_literal_outside_the_catalog():
    found = []
    for rel, text in _sources():
        for number, line in enumerate(text.splitlines(), 1):
            for rule, pattern in RULE_LITERALS.items():
                if re.search(pattern, line):
                    found.append(f"{rel}:{number}: {rule}: {line.strip()[:100]}")
    assert not found, "rule literals outside cfm/catalog:\n" + "\n".join(found)


@pytest.mark.parametrize(("line", "rule"), [
    ('remedy = "use transformers 4.43"', "the rope_scaling runtime version"),
    ("LIMIT = 26e9", "a sizing bound (26B/53B/106B)"),
    ('spec = "watsonx-cfm-caikit-1.1"', "a software specification's name"),
    ('costs = {"small": 1}', "a unit cost"),
    ("<p>4 Small, 2 Medium or 1 Large</p>", "the default limit's examples"),
    ('env_int("CFM_DEFAULT_LIMIT_UNITS", 4)', "the default limit"),
])
def test_the_patterns_catch_the_copies_that_were_found(line, rule):
    assert re.search(RULE_LITERALS[rule], line)


def test_model_choices_are_the_catalogs():
    assert {value: str(label) for value, label in Plan.choices} == catalog.PLANS
    assert [value for value, _ in Configuration.choices] == list(catalog.CONFIGURATIONS)
    assert not hasattr(catalog.Configuration, "units")  # unit costs live in UNIT_COSTS only


@pytest.mark.django_db
def test_the_home_page_follows_the_limit_and_unit_costs_an_administrator_set(client):
    html = client.get(reverse("home")).content.decode()
    assert "at most 4 capacity units by default: 4 Small, 2 Medium or 1 Large." in html
    settings_row = QuotaSettings.current()
    settings_row.default_limit_units = 8
    settings_row.save()
    UnitCost.objects.update_or_create(configuration="small", defaults={"units": 2})
    html = client.get(reverse("home")).content.decode()
    assert "at most 8 capacity units by default: 4 Small, 4 Medium or 2 Large." in html
    row = re.search(r'<tr data-configuration="small">.*?</tr>', html, re.S).group(0)
    assert 'data-label="Capacity units">2</td>' in row
    settings_row.default_limit_units = 1
    settings_row.save()
    html = client.get(reverse("home")).content.decode()
    assert "at most 1 capacity unit by default." in html  # no Small fits a limit of 1 at 2 units: no examples


def test_the_default_limit_settings_default_is_the_catalogs():
    from cfm import settings as cfm_settings

    source = Path(cfm_settings.__file__).read_text()
    assert 'env_int("CFM_DEFAULT_LIMIT_UNITS", catalog.DEFAULT_LIMIT_UNITS' in source


def test_a_rope_warning_stored_before_the_version_was_a_parameter_still_names_it():
    from cfm.registry.texts import check_message, check_remedy

    check = {"id": "known_issues", "status": "warn", "message_key": "known_issues.rope_llama3",
             "params": {"factor": 8.0}}
    assert "predates 4.43" in check_message(check) and "transformers 4.43 or newer" in check_remedy(check)
