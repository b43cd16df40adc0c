"""Every page works under the strict Content-Security-Policy (finding 3 of
issue 11): a real Chromium reports each violation on its console, and the
behaviour that used to live in inline scripts and on* attributes (confirm
before deleting, copy buttons, the account picker) still works from
static/js/cfm.js."""
from __future__ import annotations

import pytest
from browser_support import PASSWORD, log_in
from django.contrib.auth import get_user_model
from quotafactory import llama_report, make_registration

from cfm.accounts.models import Account, Membership, Role, Space
from cfm.quota.models import Deployment
from cfm.quota.services import deployment_request

pytestmark = pytest.mark.browser


def _csp_violations(page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    return seen


def test_a_violation_is_seen(live_server, page, transactional_db, request):
    """The listener works: an inline script the policy refuses shows up."""
    seen = _csp_violations(page)
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
                  " document.body.appendChild(s); }")
    page.wait_for_timeout(200)
    assert seen and page.evaluate("window.x") is None
    request.node.csp_violations.clear()  # this one was on purpose: conftest's guard must not fail the test


def test_every_page_runs_without_a_policy_violation(live_server, page, transactional_db):
    user = get_user_model().objects.create_user("csp", password=PASSWORD, is_staff=True, is_superuser=True)
    account = Account.objects.create(name="CSP lab", plan="standard")
    other = Account.objects.create(name="Second lab", plan="standard")
    for a in (account, other):
        Membership.objects.create(account=a, user=user, role=Role.OWNER)
    space = Space.objects.create(account=account, name="csp-space", runtime_instance=True)
    reg = make_registration(account, llama_report())
    deployment_request(user=user, registration=reg, space=space, serving_name="csp_llama")
    dep = Deployment.objects.get()

    seen = _csp_violations(page)
    page.set_default_timeout(15_000)
    base = live_server.url
    page.goto(f"{base}/accounts/signup/")
    log_in(page, base, "csp")
    assert page.evaluate("typeof htmx") == "object"
    for path in ("/", "/catalog/", "/dashboard/", f"/models/{reg.pk}/", f"/quota/{account.pk}/usage/",
                 f"/quota/{account.pk}/limit-request/", f"/feedback/{account.pk}/survey/", "/accounts/settings/",
                 "/admin/", "/admin/quota/ledgerentry/", "/quota/capacity/", "/api/v1/docs"):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
    assert page.locator("#swagger-ui .info").count() == 1  # the API docs rendered from our static files

    # The account picker submits on change.
    page.goto(f"{base}/models/new/?account={account.pk}")
    page.select_option("#account-select", str(other.pk))
    page.wait_for_url(f"**account={other.pk}**")

    # Copy buttons on the deployment page.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{base}/quota/deployments/{dep.pk}/")
    page.locator("button[data-copy='asset-json']").click()
    page.wait_for_function("document.getElementById('copy-status').textContent.length > 0")

    # Deleting asks first: dismissed, nothing happens; accepted, the deployment goes.
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name="Delete").first.click()
    page.wait_for_timeout(300)
    assert Deployment.objects.get(pk=dep.pk).status == "active"
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete").first.click()
    page.wait_for_load_state("networkidle")
    assert Deployment.objects.get(pk=dep.pk).status == "released"

    # A new token: selected on focus, copied by its button.
    page.goto(f"{base}/accounts/settings/")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    page.locator("#new-token").focus()
    assert page.evaluate("window.getSelection().toString() || document.activeElement.selectionEnd") != 0
    page.locator("button[data-copy='new-token']").click()
    page.wait_for_function("document.querySelector(\"button[data-copy='new-token']\").textContent === 'Copied'")
    assert seen == []
