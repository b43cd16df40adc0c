"""The capacity survey: from the limit notice (tied to the refusal) or the
usage page; never for another account."""
from __future__ import annotations

import json

import pytest

from cfm.feedback.models import SurveyResponse
from cfm.quota import services


def _refuse(actor, reg):
    for i in range(4):
        services.deployment_request(user=actor.user, registration=reg, space=actor.space, serving_name=f"s{i}")
    with pytest.raises(services.DeploymentRefused) as exc:
        services.deployment_request(user=actor.user, registration=reg, space=actor.space, serving_name="five")
    return exc.value.extra


ANSWER = {"configuration": "medium", "count": 2, "model": "meta-llama/Meta-Llama-3-70B", "use_case": "support bot",
          "timeline": "quarter", "comments": "Japanese customers"}


def test_the_survey_from_the_limit_notice_is_tied_to_the_refusal(client, owner, llama):
    refusal = _refuse(owner, llama)
    client.force_login(owner.user)
    page = client.get(refusal["survey_url"])
    html = page.content.decode()
    assert page.status_code == 200 and "needed 1 unit while" in html and "meta-llama/Meta-Llama-3-8B" in html
    r = client.post(refusal["survey_url"], {**ANSWER, "refusal": refusal["refusal"]})
    assert r.status_code == 302 and r["Location"] == f"/quota/{owner.account.id}/usage/"
    s = SurveyResponse.objects.get()
    assert (s.account, s.refusal_id, s.configuration, s.count, s.user) == (
        owner.account, refusal["refusal"], "medium", 2, owner.user)


def test_the_survey_cannot_be_sent_for_another_account_or_with_its_refusal(client, owner, stranger, llama):
    refusal = _refuse(owner, llama)
    client.force_login(stranger.user)
    assert client.post(f"/feedback/{owner.account.id}/survey/", ANSWER).status_code == 404
    own = f"/feedback/{stranger.account.id}/survey/"
    assert client.get(f"{own}?refusal={refusal['refusal']}").status_code == 404
    assert client.post(own, {**ANSWER, "refusal": refusal["refusal"]}).status_code == 404
    assert not SurveyResponse.objects.exists()
    client.logout()
    assert client.get(own).status_code == 302


def test_an_invalid_answer_is_shown_on_its_field(client, owner):
    client.force_login(owner.user)
    r = client.post(f"/feedback/{owner.account.id}/survey/", {**ANSWER, "count": 0, "configuration": "huge"})
    html = r.content.decode()
    assert r.status_code == 200 and html.count('aria-invalid="true"') >= 1 and "errorlist" in html
    assert not SurveyResponse.objects.exists()


def test_the_api_takes_a_survey_and_hides_other_accounts(client, owner, stranger, llama):
    refusal = _refuse(owner, llama)
    body = {"account": owner.account.id, "refusal": refusal["refusal"], **ANSWER}
    r = client.post("/api/v1/surveys", json.dumps(body), content_type="application/json", **owner.auth)
    assert r.status_code == 201, r.content
    assert set(r.json()) == {"id", "account", "refusal", "created_at"} and r.json()["refusal"] == refusal["refusal"]
    r = client.post("/api/v1/surveys", json.dumps(body), content_type="application/json", **stranger.auth)
    assert r.status_code == 404
    mixed = {**body, "account": stranger.account.id}  # their account, someone else's refusal
    assert client.post("/api/v1/surveys", json.dumps(mixed), content_type="application/json",
                       **stranger.auth).status_code == 404
    bad = {"account": owner.account.id, "configuration": "huge"}
    r = client.post("/api/v1/surveys", json.dumps(bad), content_type="application/json", **owner.auth)
    assert r.status_code == 400 and "configuration" in r.json()["error"]["fields"]
    no_refusal = {"account": owner.account.id, "configuration": "large"}
    assert client.post("/api/v1/surveys", json.dumps(no_refusal), content_type="application/json",
                       **owner.auth).status_code == 201
