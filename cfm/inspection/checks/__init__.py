"""The checks, in families, each a function of the facts read and the values derived from them
(cfm/inspection/facts.py, derived.py) returning its Outcome. No check reads a file or depends on
another having run; `CHECKS` maps each of the catalog's CHECK_IDS to its function, and the report lists
them in the catalog's order."""
from __future__ import annotations

from collections.abc import Callable

from cfm import catalog as rules

from ..derived import Derived
from ..facts import Facts
from . import config, known_issues, sizing, timeseries, tokenizer, weights
from .base import Outcome

CheckFunction = Callable[[Facts, Derived], Outcome]

CHECKS: dict[str, CheckFunction] = {
    "config_present": config.config_present,
    "config_valid": config.config_valid,
    "architecture": config.architecture,
    "trust_remote_code": config.trust_remote_code,
    "weights_format": weights.weights_format,
    "safetensors_header": weights.safetensors_header,
    "safetensors_index": weights.safetensors_index,
    "safetensors_metadata": weights.safetensors_metadata,
    "dtypes": weights.dtypes,
    "tokenizer": tokenizer.tokenizer,
    "quantization": config.quantization,
    "tsfm_config": timeseries.tsfm_config,
    "size": sizing.size,
    "software_spec": sizing.software_spec,
    "known_issues": known_issues.known_issues,
    "context": sizing.context,
}
assert tuple(CHECKS) == rules.CHECK_IDS, "one function per check id, in the catalog's order"


def run_checks(facts: Facts, model: Derived) -> list[Outcome]:
    return [CHECKS[check_id](facts, model) for check_id in rules.CHECK_IDS]


__all__ = ["CHECKS", "Outcome", "run_checks"]
