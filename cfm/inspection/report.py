"""The compatibility report: the contract of shared/docs/report-contract.md."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cfm.catalog import CHECK_IDS, RULES_VERSION

from .messages import MESSAGES, render

SCHEMA = 1


@dataclass
class Check:
    id: str
    status: str  # pass, warn, fail, skip
    key: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return render(MESSAGES[self.key][0], self.params) or ""

    @property
    def remedy(self) -> str | None:
        if self.status in ("pass", "skip"):
            return None
        return render(MESSAGES[self.key][1], self.params)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status, "message": self.message, "remedy": self.remedy,
            # beyond the contract: what a page needs to render it in another language
            "message_key": self.key, "params": self.params,
        }


@dataclass
class Report:
    source: str
    model_type: str | None = None
    architectures: list[str] = field(default_factory=list)
    family: str = "general"
    certified: bool = False
    parameters: int | None = None
    parameters_exact: bool = False
    weight_bytes: int | None = None
    serving_bytes: int | None = None
    dtypes: dict[str, int] = field(default_factory=dict)
    quantization: str | None = None
    tensor_parallel: bool | None = None
    configuration: str | None = None
    software_specs: list[str] = field(default_factory=list)
    recommended_software_spec: str | None = None
    preparation: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def deployable(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def check(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self.checks, key=lambda c: CHECK_IDS.index(c.id) if c.id in CHECK_IDS else len(CHECK_IDS))
        out = {
            "schema": SCHEMA,
            "rules_version": RULES_VERSION,
            "source": self.source,
            "model_type": self.model_type,
            "architectures": self.architectures,
            "family": self.family,
            "certified": self.certified,
            "parameters": self.parameters,
            "parameters_exact": self.parameters_exact,
            "weight_bytes": self.weight_bytes,
            "serving_bytes": self.serving_bytes,
            "dtypes": self.dtypes,
            "quantization": self.quantization,
            "tensor_parallel": self.tensor_parallel,
            "configuration": self.configuration,
            "software_specs": self.software_specs,
            "recommended_software_spec": self.recommended_software_spec,
            "deployable": self.deployable,
            "preparation": self.preparation,
            "checks": [c.to_dict() for c in ordered],
        }
        out.update(self.extra)
        return out
