"""Filters for the pages: formatting and label lookups only. The report's
words and numbers come from cfm.registry.texts, the decisions of what a page
shows from cfm.registry.presenters (which the views call)."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext, gettext_noop

from cfm import catalog
from cfm.registry import texts

register = template.Library()

for _name in ("filesize", "num", "bignum", "check_message", "check_remedy"):
    register.filter(_name, getattr(texts, _name))
filesize, num, bignum = texts.filesize, texts.num, texts.bignum
check_message, check_remedy = texts.check_message, texts.check_remedy


@register.filter
def verdict_badge(verdict):
    """The label and explanation of a verdict (the words live in the presenter)."""
    from cfm.registry.presenters import badge

    return badge(verdict)


def _labels():
    # Marked here so makemessages finds them; translated per request below.
    return {
        "config_present": gettext_noop("config.json present"),
        "config_valid": gettext_noop("config.json valid"),
        "architecture": gettext_noop("Architecture"),
        "trust_remote_code": gettext_noop("Custom code"),
        "weights_format": gettext_noop("Weights format"),
        "safetensors_header": gettext_noop("Safetensors headers"),
        "safetensors_index": gettext_noop("Safetensors index"),
        "safetensors_metadata": gettext_noop("Safetensors metadata"),
        "dtypes": gettext_noop("Tensor dtypes"),
        "tokenizer": gettext_noop("Tokenizer"),
        "quantization": gettext_noop("Quantization"),
        "tsfm_config": gettext_noop("tsfm_config.json"),
        "size": gettext_noop("Size"),
        "software_spec": gettext_noop("Software specification"),
        "known_issues": gettext_noop("Known issues"),
        "context": gettext_noop("Context and KV cache"),
    }


@register.filter
def check_label(check_id: str) -> str:
    return gettext(_labels().get(check_id, check_id))


def _status_words():
    return {
        "pass": gettext_noop("Pass"),
        "warn": gettext_noop("Warning"),
        "fail": gettext_noop("Fail"),
        "skip": gettext_noop("Skipped"),
    }


@register.filter
def status_label(status: str) -> str:
    return gettext(_status_words().get(status, status))


def _steps():
    return {
        "": gettext_noop("Waiting for a worker"),
        "queued": gettext_noop("Waiting for a worker"),
        "fetching": gettext_noop("Fetching files"),
        "listing_files": gettext_noop("Listing files"),
        "reading_config": gettext_noop("Reading config.json"),
        "reading_headers": gettext_noop("Reading safetensors headers"),
        "checking": gettext_noop("Checking the platform's rules"),
        "starting": gettext_noop("Starting"),
        "retrying": gettext_noop("Waiting to retry"),
        "requeued": gettext_noop("Queued again"),
        "reused": gettext_noop("Reused the report of the same commit"),
        "done": gettext_noop("Done"),
    }


@register.filter
def step_label(step: str) -> str:
    return gettext(_steps().get(step or "", step))


def _preparation():
    return {
        "convert_weights_to_safetensors": (
            gettext_noop("Convert the weights to safetensors"),
            # Prepare's cast to 16 bits is an option, off by default: the report cannot say which.
            gettext_noop("The PyTorch weights are rewritten as safetensors; every tensor keeps its dtype unless "
                         "you choose on the Prepare page to cast 32-bit floats to 16 bits."),
        ),
        "generate_tokenizer_json": (
            gettext_noop("Generate tokenizer.json"),
            gettext_noop("The fast tokenizer file is built from the slow-tokenizer files."),
        ),
        "add_tsfm_config": (
            gettext_noop("Add tsfm_config.json"),
            gettext_noop("Written from config.json's context and prediction lengths."),
        ),
        "fix_safetensors_metadata": (
            gettext_noop("Fix the safetensors metadata"),
            gettext_noop('Only the header is rewritten, with {"format": "pt"}.'),
        ),
        "fix_rope_scaling": (
            gettext_noop("Rewrite rope_scaling"),
            gettext_noop(
                "The two-field form older runtimes accept; behaviour changes past the original context length."
            ),
        ),
    }


@register.filter
def preparation_title(step: str) -> str:
    return gettext(_preparation().get(step, (step, ""))[0])


@register.filter
def preparation_detail(step: str) -> str:
    return gettext(_preparation().get(step, (step, ""))[1])


def _limitations():
    return {
        "no_tuning": gettext_noop("A custom foundation model cannot be tuned on the platform."),
        "no_prompt_governance": gettext_noop(
            "Prompt templates of a custom foundation model cannot be evaluated or tracked with watsonx.governance."
        ),
    }


@register.filter
def limitation_text(key: str) -> str:
    return gettext(_limitations().get(key, key))


@register.filter
def configuration_label(key) -> str:
    if not key:
        return gettext("none fits")
    conf = catalog.CONFIGURATIONS.get(key)
    return gettext(conf.label) if conf else str(key)


@register.filter
def percent(done, total) -> int:
    try:
        done, total = int(done), int(total)
    except (TypeError, ValueError):
        return 0
    if total <= 0:
        return 0
    return max(0, min(100, round(100 * done / total)))


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def configuration_short(key) -> str:
    conf = catalog.CONFIGURATIONS.get(key or "")
    return conf.short if conf else ""


@register.filter
def limitations(report: dict) -> list[str]:
    return list((report or {}).get("limitations") or catalog.LIMITATIONS)
