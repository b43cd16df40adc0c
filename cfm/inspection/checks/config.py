"""Checks on config.json: present, valid, a known architecture, no remote code, a certified quantization."""
from __future__ import annotations

from cfm import catalog as rules

from ..derived import Derived
from ..facts import Facts
from .base import Outcome, json_type, outcome


def config_present(facts: Facts, model: Derived) -> Outcome:
    if facts.config_file is not None:
        return outcome("config_present", "pass", "config_present.pass")
    kind = facts.not_files.get("config.json")
    if kind:
        return outcome("config_present", "fail", "config_present.not_file", file="config.json", kind=kind)
    return outcome("config_present", "fail", "config_present.fail")


def config_valid(facts: Facts, model: Derived) -> Outcome:
    found = facts.config_file
    if found is None:
        return outcome("config_valid", "skip", "config_valid.skip")
    exc = found.problem
    if exc is not None:
        if exc.reason == "unreadable":
            return outcome("config_valid", "fail", "config_valid.unreadable", detail=exc.detail)
        limits = facts.limits
        shown_cap = limits.max_json_depth if exc.reason == "too_deep" else limits.max_config_bytes
        return outcome("config_valid", "fail", f"config_valid.{exc.reason}", detail=exc.detail,
                       size=facts.files["config.json"], cap=shown_cap)
    if not isinstance(found.value, dict):
        return outcome("config_valid", "fail", "config_valid.not_object", type=json_type(found.value))
    if facts.config is None:
        return outcome("config_valid", "fail", "config_valid.no_model_type")
    return outcome("config_valid", "pass", "config_valid.pass", model_type=facts.config["model_type"])


def architecture(facts: Facts, model: Derived) -> Outcome:
    if facts.config is None:
        return outcome("architecture", "skip", "architecture.skip")
    first_arch = model.architectures[0] if model.architectures else ""
    support = model.architecture_support
    if support == "certified":
        return outcome("architecture", "pass", "architecture.pass", model_type=model.model_type)
    if support == "vllm":
        return outcome("architecture", "warn", "architecture.warn", model_type=model.model_type,
                       architecture=first_arch, spec=rules.SPEC_VLLM)
    if support == "mismatch":
        return outcome("architecture", "fail", "architecture.fail_mismatch", model_type=model.model_type,
                       architecture=first_arch)
    return outcome("architecture", "fail", "architecture.fail", model_type=model.model_type,
                   architecture=first_arch or "no architectures")


def trust_remote_code(facts: Facts, model: Derived) -> Outcome:
    if facts.config is None:
        return outcome("trust_remote_code", "skip", "trust_remote_code.skip")
    auto_map = facts.config.get("auto_map")
    if auto_map:
        classes = ", ".join(sorted(str(k) for k in auto_map)) if isinstance(auto_map, dict) else str(auto_map)
        return outcome("trust_remote_code", "warn", "trust_remote_code.warn", classes=classes[:200],
                       model_type=model.model_type)
    return outcome("trust_remote_code", "pass", "trust_remote_code.pass")


def quantization(facts: Facts, model: Derived) -> Outcome:
    if facts.config is None:
        return outcome("quantization", "skip", "quantization.skip")
    method = model.quantization
    if method is None:
        if isinstance(facts.config.get("quantization_config"), dict):
            return outcome("quantization", "warn", "quantization.warn_unnamed")
        return outcome("quantization", "pass", "quantization.pass_none")
    certified = model.arch.quantization if model.arch else ()
    if method in certified:
        return outcome("quantization", "pass", "quantization.pass", method=method, model_type=model.model_type)
    return outcome("quantization", "warn", "quantization.warn", method=method, model_type=model.model_type,
                   certified=", ".join(certified) or "none")
