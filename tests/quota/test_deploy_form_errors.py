"""The deploy form reports every error in one round, in a summary at its top
that takes the focus, with each field marked aria-invalid and described by
its error."""
from __future__ import annotations

import re

from quotafactory import make_actor

from cfm.quota import services
from cfm.quota.models import Deployment


def _key(client, reg) -> str:
    page = client.get(f"/quota/registrations/{reg.id}/deploy/").content.decode()
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page).group(1)


def test_a_field_the_browser_sent_wrong_and_a_taken_serving_name_are_reported_together(client, owner, llama):
    services.deployment_request(user=owner.user, registration=llama, space=owner.space, configuration="small",
                                serving_name="taken")
    client.force_login(owner.user)
    r = client.post(f"/quota/registrations/{llama.id}/deploy/", {
        "space": owner.space.id, "configuration": "small", "software_spec": llama.report["software_specs"][0],
        "serving_name": "taken", "idempotency_key": _key(client, llama),
        "param_max_batch_size": "lots"})
    html = r.content.decode()
    summary = re.search(r'<div class="notice notice-error error-summary"(.*?)</div>', html, re.S).group(0)
    assert 'tabindex="-1"' in summary and "autofocus" in summary and 'role="alert"' in summary
    # the form's own error (not a number) and the service's (the name is taken): one round, not two
    assert "There are 2 problems to fix" in summary
    links = re.findall(r'<a href="#(id_\w+)">', summary)
    assert links == ["id_serving_name", "id_param_max_batch_size"]
    for field in links:
        control = re.search(rf'<input[^>]*id="{field}"[^>]*>', html).group(0)
        assert 'aria-invalid="true"' in control
        assert f"{field}_error" in control  # aria-describedby names the error
        assert f'id="{field}_error"' in html
    assert Deployment.objects.filter(serving_name="taken").count() == 1  # nothing more was reserved


def test_a_valid_form_has_no_summary(client, owner, llama):
    client.force_login(owner.user)
    html = client.get(f"/quota/registrations/{llama.id}/deploy/").content.decode()
    assert 'class="notice notice-error error-summary"' not in html and "error-summary.js" in html


def test_another_accounts_model_is_not_validated_for_a_stranger(client, owner, llama):
    stranger = make_actor("zed")
    client.force_login(stranger.user)
    assert client.post(f"/quota/registrations/{llama.id}/deploy/", {"serving_name": "x"}).status_code == 404
