"""The quota's writes and reads, by the names the rest of cfm calls them.

The code lives by concern: ledger.py (unit costs, limits, the lock, limit
requests, grants, adjustments, verification), deployments.py (a deployment
request, its validation, its life and release), parameters.py (deployment
parameters against the catalog and memory), bodies.py (the platform's
request bodies), serialize.py (API bodies), selectors.py (reads), errors.py
(the refusals). This module only gathers their public names.
"""
from __future__ import annotations

from .bodies import (
    ASSET_PLACEHOLDER,
    BUCKET_PLACEHOLDER,
    CONNECTION_PLACEHOLDER,
    SPACE_PLACEHOLDER,
    asset_body,
    online_deployment_body,
    platform_request,
)
from .deployments import (
    DeploymentOutcome,
    DeploymentPlan,
    deployment_delete,
    deployment_event,
    deployment_release,
    deployment_request,
    deployment_validate,
    normalize_configuration,
    outside_deployment_record,
    platform_limit_refusal,
)
from .errors import DeploymentRefused, LimitRequestPending, PlanNotAllowed, QuotaRuleError
from .ledger import (
    LedgerCheck,
    default_limit_units,
    ledger_adjust,
    ledger_annotations,
    ledger_totals,
    ledger_verify,
    ledger_verify_many,
    limit_request_approve,
    limit_request_create,
    limit_request_deny,
    unit_cost,
    unit_costs,
)
from .parameters import parameter_defaults, suggested_dtype, validate_parameters
from .selectors import Usage, quota_usage
from .serialize import deployment_body

__all__ = [
    "DeploymentRefused", "QuotaRuleError", "PlanNotAllowed", "LimitRequestPending", "Usage", "LedgerCheck",
    "DeploymentPlan", "DeploymentOutcome",
    "unit_costs", "unit_cost", "default_limit_units", "ledger_totals", "ledger_annotations", "quota_usage",
    "ledger_verify", "ledger_verify_many",
    "deployment_validate", "normalize_configuration", "validate_parameters", "platform_request", "deployment_body",
    "parameter_defaults", "suggested_dtype",
    "asset_body", "online_deployment_body", "deployment_event", "deployment_release", "platform_limit_refusal",
    "outside_deployment_record",
    "deployment_request",
    "deployment_delete", "limit_request_create", "limit_request_approve", "limit_request_deny", "ledger_adjust",
    "ASSET_PLACEHOLDER", "BUCKET_PLACEHOLDER", "CONNECTION_PLACEHOLDER", "SPACE_PLACEHOLDER",
]
