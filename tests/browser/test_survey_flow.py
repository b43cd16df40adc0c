"""The limit and survey flow in a real headless Chromium against the live
server: an account at its limit tries one more deployment, reads the notice
(what it holds, what the request needs, the three choices), answers the
survey from it, and staff find the answer, tied to the refusal, in the admin."""
from __future__ import annotations

import pytest
from browser_support import PASSWORD, log_in
from quotafactory import make_actor, make_registration

from cfm.feedback.models import SurveyResponse
from cfm.quota import services

pytestmark = pytest.mark.browser


def test_hit_the_limit_read_the_notice_answer_the_survey_and_staff_see_it_in_the_admin(
        live_server, browser, transactional_db, shot):
    owner = make_actor("yui")
    owner.user.set_password(PASSWORD)
    owner.user.save()
    admin = make_actor("ops", staff=True)
    admin.user.is_superuser = True
    admin.user.set_password(PASSWORD)
    admin.user.save()
    reg = make_registration(owner.account)
    for name in ("chat_a", "chat_b"):
        services.deployment_request(user=owner.user, registration=reg, space=owner.space, serving_name=name)
    services.deployment_request(user=owner.user, registration=reg, space=owner.space, serving_name="batch",
                                configuration="medium")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    log_in(page, live_server.url, "yui")

    # One more Medium: 4 of 4 units are held, the request is refused with the notice.
    page.goto(f"{live_server.url}/quota/registrations/{reg.id}/deploy/")
    page.get_by_label("Configuration", exact=True).select_option("medium")
    page.get_by_label("Serving name").fill("one_more")
    page.get_by_role("button", name="Reserve and prepare the deployment").click()
    notice = page.locator("#limit-notice")
    notice.wait_for()
    text = notice.inner_text()
    assert "4 of 4 units" in text and "chat_a" in text and "batch" in text
    assert "2 units" in text and "not guaranteed" in text
    shot(page, "quota-limit-notice")

    page.get_by_role("link", name="Answer the survey").click()
    page.wait_for_url("**/survey/?refusal=*")
    page.get_by_label("Large", exact=True).check()
    page.get_by_label("How many deployments of it?").fill("2")
    page.get_by_label("Which model?").fill("meta-llama/Meta-Llama-3-70B")
    page.get_by_label("What is it for?").fill("A support assistant for Japanese customers")
    page.get_by_label("When do you need it?").select_option("quarter")
    shot(page, "feedback-survey")
    page.get_by_role("button", name="Send my answer").click()
    page.wait_for_url(f"**/quota/{owner.account.id}/usage/")
    assert "Thank you" in page.locator(".messages").inner_text()
    shot(page, "quota-usage-after-survey")

    answer = SurveyResponse.objects.get()
    assert (answer.account_id, answer.configuration, answer.count) == (owner.account.id, "large", 2)
    assert answer.refusal is not None and answer.refusal.needed_units == 2

    staff_page = browser.new_page(viewport={"width": 1280, "height": 900})
    staff_page.set_default_timeout(15_000)
    log_in(staff_page, live_server.url, "ops")
    staff_page.goto(f"{live_server.url}/admin/feedback/surveyresponse/")
    row = staff_page.locator("#result_list tbody tr").first
    assert "meta-llama/Meta-Llama-3-70B" in row.inner_text() and "Yui team" in row.inner_text()
    shot(staff_page, "admin-survey-responses")
    staff_page.goto(f"{live_server.url}/quota/capacity/")
    assert staff_page.locator("svg.chart").count() == 2
    shot(staff_page, "quota-capacity")
