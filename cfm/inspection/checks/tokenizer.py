"""The tokenizer check: a fast tokenizer (tokenizer.json), or slow files Prepare can convert."""
from __future__ import annotations

from cfm import catalog as rules

from ..derived import Derived
from ..facts import Facts
from ..jsonsafe import JsonProblem
from .base import Outcome, json_detail, json_type, outcome


def tokenizer(facts: Facts, model: Derived) -> Outcome:
    if model.family == "time_series":
        return outcome("tokenizer", "skip", "tokenizer.skip")
    slow = [group for group in rules.SLOW_TOKENIZER_FILES if all(facts.root(f) for f in group)]
    slow_names = ", ".join(" + ".join(g) for g in slow)
    prepare = "generate_tokenizer_json" if slow else None  # Prepare regenerates it from the slow files
    found = facts.tokenizer_file
    if found is not None:
        exc = found.problem
        if exc is None and not isinstance(found.value, dict):
            exc = JsonProblem("not_json", f"a JSON {json_type(found.value)}, not an object")
        if exc is None:
            return outcome("tokenizer", "pass", "tokenizer.pass")
        if exc.reason == "too_large":
            return outcome("tokenizer", "fail", "tokenizer.fail_too_large", prepare=prepare,
                           size=facts.files["tokenizer.json"], cap=facts.limits.max_small_file_bytes)
        if exc.reason == "unreadable":
            return outcome("tokenizer", "fail", "tokenizer.fail_unreadable", prepare=prepare, detail=exc.detail)
        if slow:
            return outcome("tokenizer", "fail", "tokenizer.fail_invalid_prepare", prepare=prepare,
                           detail=json_detail(exc, facts.limits), files=slow_names)
        return outcome("tokenizer", "fail", "tokenizer.fail_invalid", detail=json_detail(exc, facts.limits))
    if slow:
        return outcome("tokenizer", "warn", "tokenizer.warn", prepare=prepare, files=slow_names)
    kind = facts.not_files.get("tokenizer.json")
    if kind:
        return outcome("tokenizer", "fail", "tokenizer.not_file", file="tokenizer.json", kind=kind)
    return outcome("tokenizer", "fail", "tokenizer.fail_none")
