"""API v1: POST /surveys (docs/api.md)."""
from __future__ import annotations

from datetime import UTC

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status

from cfm.accounts.selectors import account_get
from cfm.apitools import ApiError
from cfm.quota.selectors import refusal_get

from .services import survey_submit

router = Router(tags=["surveys"])


class SurveyIn(Schema):
    account: int
    refusal: int | None = None
    configuration: str
    count: int = 1
    model: str = ""
    use_case: str = ""
    timeline: str = "now"
    comments: str = ""


@router.post("/surveys", response={201: dict}, summary="Answer the capacity survey")
def survey_create(request, payload: SurveyIn):
    account = account_get(user=request.user, account_id=payload.account)
    if account is None:
        raise ApiError("not_found", _("No such account."))
    refusal = None
    if payload.refusal is not None:
        refusal = refusal_get(account=account, refusal_id=payload.refusal)
        if refusal is None:
            raise ApiError("not_found", _("No such refusal."))
    try:
        response = survey_submit(user=request.user, account=account, refusal=refusal,
                                 configuration=payload.configuration, count=payload.count, model=payload.model,
                                 use_case=payload.use_case, timeline=payload.timeline, comments=payload.comments)
    except ValidationError as exc:
        fields = {name: " ".join(str(m) for m in msgs) for name, msgs in exc.message_dict.items()}
        raise ApiError("invalid", _("The survey answer is not valid."), fields=fields) from None
    return Status(201, {"id": response.id, "account": account.id, "refusal": refusal.id if refusal else None,
                        "created_at": response.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")})
