"""Known issues of the platform's runtimes that a model's config.json runs into (catalog data)."""
from __future__ import annotations

from cfm import catalog as rules

from ..derived import Derived
from ..facts import Facts
from .base import Outcome, outcome


def known_issues(facts: Facts, model: Derived) -> Outcome:
    cfg = facts.config
    if cfg is None:
        return outcome("known_issues", "skip", "known_issues.skip")
    llama3, factor = rules.llama3_rope_scaling(cfg)
    if not llama3:
        return outcome("known_issues", "pass", "known_issues.pass")
    version = rules.ROPE_FIX["min_transformers"]
    if factor is None:
        return outcome("known_issues", "warn", "known_issues.rope_llama3_no_factor", min_transformers=version)
    # Name the spec the user can pick (catalog data: which runtimes have the rope fix's transformers).
    newer = [s for s in model.software_specs if rules.SPECS_TRANSFORMERS_4_43.get(s)]
    if newer:
        older = [s for s in model.software_specs if s not in newer]
        return outcome("known_issues", "warn", "known_issues.rope_llama3_spec", prepare="fix_rope_scaling",
                       factor=factor, min_transformers=version, spec=" or ".join(newer),
                       older=", ".join(older) or "an older runtime")
    return outcome("known_issues", "warn", "known_issues.rope_llama3", prepare="fix_rope_scaling", factor=factor,
                   min_transformers=version)
