"""The quota's refusals. Each carries only an error code: cfm/errors.py
gives the HTTP status it answers with."""
from __future__ import annotations

from cfm.errors import http_status


class DeploymentRefused(Exception):
    """A refused deployment request: its code and the API error body."""

    def __init__(self, code: str, message: str, **extra):
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra

    @property
    def status(self) -> int:
        return http_status(self.code)

    @property
    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}

    @classmethod
    def from_body(cls, body: dict) -> DeploymentRefused:
        err = dict(body["error"])
        return cls(err.pop("code"), err.pop("message"), **err)


class QuotaRuleError(Exception):
    """A limit request or ledger action that the rules do not allow. `field`
    names the input at fault; `code` is the API's answer (its status from
    cfm/errors.py) and `extra` goes into its error body."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, **extra):
        super().__init__(message)
        self.message, self.field, self.extra = message, field, extra

    @property
    def status(self) -> int:
        return http_status(self.code)


class PlanNotAllowed(QuotaRuleError):
    """The account's plan may not use custom models at all."""

    code = "plan_not_allowed"


class LimitRequestPending(QuotaRuleError):
    """The same request is already waiting for an answer."""

    code = "limit_request_pending"
