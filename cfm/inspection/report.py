"""The compatibility report: the contract of docs/report.md."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cfm.catalog import CHECK_IDS, RULES_VERSION, VERDICTS

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
    #: config.json's maximum sequence length (report-contract: context_length)
    context_length: int | None = None
    #: the KV cache and each configuration's memory (report-contract: memory), None when unknown
    memory: dict[str, Any] | None = None
    software_specs: list[str] = field(default_factory=list)
    recommended_software_spec: str | None = None
    preparation: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def deployable(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    @property
    def verdict(self) -> str:
        """One word for the badge (report-contract: verdict). The later of
        ready < prepare < uncertified < refused wins."""
        if not self.deployable:
            return "refused"
        status = {c.id: c.status for c in self.checks}
        if status.get("architecture") == "warn" or status.get("quantization") == "warn":
            return "uncertified"
        if self.preparation:
            return "prepare"
        return "ready"

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
            "context_length": self.context_length,
            "memory": self.memory,
            "software_specs": self.software_specs,
            "recommended_software_spec": self.recommended_software_spec,
            "deployable": self.deployable,
            "verdict": self.verdict,
            "preparation": self.preparation,
            "checks": [c.to_dict() for c in ordered],
        }
        out.update(self.extra)
        return _clean(out)


def verdict_of(report: dict[str, Any] | None) -> str | None:
    """The verdict of a report as JSON: its own `verdict`, or, for a report
    written before the field existed, the same rule applied to its fields
    (refused > uncertified > prepare > ready). None for no report."""
    if not isinstance(report, dict):
        return None
    stored = report.get("verdict")
    if stored in VERDICTS:
        return stored
    if not report.get("deployable"):
        return "refused"
    checks = report.get("checks")
    if not isinstance(checks, list):
        checks = []
    warned = {c.get("id") for c in checks if isinstance(c, dict) and c.get("status") == "warn"}
    if report.get("certified") is False or "architecture" in warned or "quantization" in warned:
        return "uncertified"
    if report.get("preparation"):
        return "prepare"
    return "ready"


def _clean_str(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate ("\\ud800" in a file's JSON) cannot be written as UTF-8 nor stored.
        s = s.encode("utf-8", "replace").decode("utf-8")
    # PostgreSQL's jsonb refuses U+0000 in strings.
    return s.replace("\x00", "\ufffd") if "\x00" in s else s


def _clean(value: Any) -> Any:
    """The report's strings as any JSON consumer accepts them: values copied from a
    model's files may hold lone surrogates or NUL characters."""
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, dict):
        return {(_clean_str(k) if isinstance(k, str) else k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value
