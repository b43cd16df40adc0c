"""The quota's refusals. Each carries an error code; cfm/errors.py maps
the code to its HTTP status."""
from __future__ import annotations


class DeploymentRefused(Exception):
    """A refused deployment request: `status` and the API error body."""

    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    @property
    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}

    @classmethod
    def from_body(cls, status: int, body: dict) -> DeploymentRefused:
        err = dict(body["error"])
        return cls(status, err.pop("code"), err.pop("message"), **err)


class QuotaRuleError(Exception):
    """A limit request or ledger action that the rules do not allow. `field`
    names the input at fault; `status` and `code` are the API's answer and
    `extra` goes into its error body."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, **extra):
        super().__init__(message)
        self.message, self.field, self.extra = message, field, extra


class PlanNotAllowed(QuotaRuleError):
    """The account's plan may not use custom models at all."""

    status = 403
    code = "plan_not_allowed"


class LimitRequestPending(QuotaRuleError):
    """The same request is already waiting for an answer."""

    status = 409
    code = "limit_request_pending"
