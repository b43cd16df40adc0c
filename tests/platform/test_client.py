"""The platform client against the imitation: real HTTP, no mock."""
from __future__ import annotations

import time

import pytest
from platformsupport import API_KEY


@pytest.fixture
def client_for(platform):
    from cfm.platform.client import PlatformClient

    def make(**kw):
        return PlatformClient(url=platform.url, iam_url=platform.url, api_key=API_KEY, space_id="space-1",
                              **{"backoff": 0.05, **kw})

    return make


def test_the_token_is_reused_until_a_minute_before_it_expires(platform, client_for):
    from cfm.platform.client import forget_tokens

    c = client_for()
    c.list_deployments()
    c.list_deployments()
    assert len(platform.calls("POST", "/identity/token")) == 1
    forget_tokens()
    platform.token_ttl = 59  # expires within the minute: never reused
    c.list_deployments()
    c.list_deployments()
    assert len(platform.calls("POST", "/identity/token")) == 3


def test_every_request_carries_the_version_and_the_bearer_token(platform, client_for):
    client_for().list_deployments()
    req = platform.calls("GET", "/ml/v4/deployments")[0]
    token = platform.calls("POST", "/identity/token")[0]
    assert token.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token.query == {"version": "2025-07-03"}
    assert req.query == {"space_id": "space-1", "version": "2025-07-03"}
    assert req.headers["Authorization"].startswith("Bearer tok-")


def test_retry_after_is_honoured(platform, client_for):
    platform.script("GET", "/ml/v4/deployments", 429, {"errors": [{"code": "x", "message": "slow"}]},
                    headers={"Retry-After": "1"})
    started = time.monotonic()
    assert client_for().list_deployments() == []
    assert time.monotonic() - started >= 1.0
    assert len(platform.calls("GET", "/ml/v4/deployments")) == 2


def test_5xx_without_retry_after_backs_off_then_gives_up_as_unavailable(platform, client_for):
    from cfm.platform.client import PlatformError

    platform.script("GET", "/ml/v4/deployments", 502, None, times=10)
    with pytest.raises(PlatformError) as err:
        client_for(attempts=3).list_deployments()
    assert err.value.kind == "unavailable" and "unavailable" in err.value.message
    assert len(platform.calls("GET", "/ml/v4/deployments")) == 3


def test_a_refused_key_is_not_retried(platform, client_for):
    from cfm.platform.client import PlatformError

    platform.api_keys = {"other"}
    with pytest.raises(PlatformError) as err:
        client_for().list_deployments()
    assert err.value.kind == "api_key_refused" and len(platform.calls("POST", "/identity/token")) == 1


def test_the_error_words_are_classified():
    from cfm.platform.client import classify

    assert classify("Deployment failed: Insufficient resources to run the model") == "insufficient_resources"
    assert classify("x", "deployment_limit_exceeded") == "limit"
    assert classify("The account has reached its limit of deployments") == "limit"
    assert classify("serving_name is taken") == "rejected"
    assert classify("The number of deployments exceeds the account limit") == "limit"
    assert classify("Quota exceeded for this instance") == "limit"
    # a parameter's limit is not the account's
    assert classify("max_new_tokens 9000 exceeds the limit of 4096", "invalid_parameter") == "rejected"
    assert classify("max_sequence_length is above its limit (8192)") == "rejected"
