"""Rows for the quota and feedback tests: three users (the owner, a member of
another account, anonymous), Standard accounts with a space that has a
runtime, and registrations made directly with a report dict (a deployable
small llama, a time-series model, a non-deployable one).

Import the fixtures into a conftest with `from quotafactory import *`."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from needs import need  # noqa: F401  (re-exported for the quota tests)

from cfm import catalog


def llama_report(configuration: str = "small", deployable: bool = True) -> dict:
    return {
        "schema": 1, "rules_version": catalog.RULES_VERSION, "source": "hf://meta-llama/Meta-Llama-3-8B@abc",
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "family": "general", "certified": True,
        "parameters": 8_030_261_248, "parameters_exact": True, "weight_bytes": 16_060_522_496,
        "serving_bytes": 16_060_522_496, "dtypes": {"BF16": 291}, "quantization": None, "tensor_parallel": True,
        "configuration": configuration if deployable else None,
        "software_specs": [catalog.SPEC_TGI, catalog.SPEC_VLLM] if deployable else [],
        "recommended_software_spec": catalog.SPEC_VLLM if deployable else None,
        "deployable": deployable, "preparation": [], "checks": [],
    }


def mistral_report() -> dict:
    """No tensor parallelism: Small only."""
    r = llama_report()
    r.update(model_type="mistral", architectures=["MistralForCausalLM"], tensor_parallel=False,
             source="hf://mistralai/Mistral-7B-v0.3@abc")
    return r


def timeseries_report(configuration: str = "small") -> dict:
    return {
        "schema": 1, "rules_version": catalog.RULES_VERSION, "source": "hf://ibm-granite/granite-timeseries-ttm-r2@x",
        "model_type": "tinytimemixer", "architectures": ["TinyTimeMixerForPrediction"], "family": "time_series",
        "certified": True, "parameters": 805_280, "parameters_exact": True, "weight_bytes": 3_221_120,
        "serving_bytes": 1_610_560, "dtypes": {"F32": 80}, "quantization": None, "tensor_parallel": None,
        "configuration": configuration, "software_specs": [catalog.SPEC_TSFM],
        "recommended_software_spec": catalog.SPEC_TSFM, "deployable": True, "preparation": [], "checks": [],
    }


def broken_report() -> dict:
    r = llama_report(deployable=False)
    r["checks"] = [{"id": "safetensors_metadata", "status": "fail", "message": "format mlx", "remedy": "Prepare"}]
    return r


@dataclass
class Actor:
    user: object
    account: object
    space: object
    token: str

    @property
    def auth(self) -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}


def make_actor(username: str, *, plan: str = "standard", staff: bool = False) -> Actor:
    from django.contrib.auth import get_user_model

    from cfm.accounts.models import Account, Membership, Space
    from cfm.accounts.tokens import token_create

    user = get_user_model().objects.create_user(username, password=f"pw-{username}-Secret1", is_staff=staff)
    account = Account.objects.create(name=f"{username.title()} team", plan=plan)
    Membership.objects.create(account=account, user=user, role="owner")
    space = Space.objects.create(account=account, name=f"{username}-space", runtime_instance=True)
    _token, raw = token_create(user=user, name="tests")
    return Actor(user=user, account=account, space=space, token=raw)


def make_registration(account, report: dict | None = None, *, source: str | None = None):
    from cfm.registry.models import Registration

    report = llama_report() if report is None else report
    return Registration.objects.create(
        account=account, source_kind="hub", source=source or report["source"][5:].split("@")[0], revision="main",
        status="done", report=report)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2's deliberate slowness is not under test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner(db):
    return make_actor("alice")


@pytest.fixture
def stranger(db):
    """Owner of another account: sees none of alice's things."""
    return make_actor("bob")


@pytest.fixture
def staff(db):
    return make_actor("sam", staff=True)


@pytest.fixture
def llama(owner):
    return make_registration(owner.account, llama_report())


@pytest.fixture
def mistral(owner):
    return make_registration(owner.account, mistral_report())


@pytest.fixture
def ttm(owner):
    return make_registration(owner.account, timeseries_report())


@pytest.fixture
def broken(owner):
    return make_registration(owner.account, broken_report(), source="someone/broken-model")


__all__ = ["need", "_fast_passwords", "llama_report", "mistral_report", "timeseries_report", "broken_report",
           "Actor", "make_actor", "make_registration", "owner", "stranger", "staff", "llama", "mistral", "ttm",
           "broken"]
