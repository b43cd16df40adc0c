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


def test_too_few_deployments_are_refused_with_one_minimum_and_one_message(client, owner):
    """-1 met the form field's minimum of 0 and 0 the model's minimum of 1:
    two limits, two messages. Now one, the same in the browser and the API."""
    client.force_login(owner.user)
    url = f"/feedback/{owner.account.id}/survey/"
    html = client.get(url).content.decode()
    count_input = html.split('name="count"')[1].split(">")[0]
    assert 'min="1"' in count_input and 'max="1000"' in count_input

    def error(count) -> str:
        page = client.post(url, {**ANSWER, "count": count}).content.decode()
        return page.split('id="id_count_error"')[1].split("</ul>")[0]

    below = {count: error(count) for count in (-1, 0)}
    assert below[-1] == below[0] and "greater than or equal to 1." in below[0]
    assert "less than or equal to 1000." in error(1001)
    api = client.post("/api/v1/surveys", json.dumps({**ANSWER, "account": owner.account.id, "count": -1}),
                      content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {owner.token}").json()
    assert api["error"]["fields"]["count"] == "Ensure this value is greater than or equal to 1."
    assert client.post(url, {**ANSWER, "count": 1}).status_code == 302
    assert not SurveyResponse.objects.exclude(count=1).exists()


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
