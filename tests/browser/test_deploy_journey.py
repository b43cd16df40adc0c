"""The journey from sign-up to a running deployment, in a real headless
Chromium against the live server, the platform imitation
(tests/platformserver.py) and a real S3-compatible server (moto): sign up
→ create the first space (the sign-up leads there) → connect it and test
the connection → register an archive that needs Prepare → Prepare → the
model's page shows the prepared copy → Deploy it → watch it become ready
→ delete it. Then the same in Japanese up to the deployment page.
Screenshots at 1280 and 390 px go to SHOTS_DIR.

The inspection and the deployment's first run (upload, model asset,
deployment) happen in the browser tests' real Celery worker (conftest.py),
which gets the imitation's and moto's addresses as its allowed hosts. Two
things run here instead, through the same functions: Prepare, which
travels on a queue of its own, and the tracking's later polls, which the
runtime's sweeper sends when due (the browser worker runs no beat)."""
from __future__ import annotations

import os
import socket
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from browser_support import PASSWORD
from jobrun import run_prepare
from preparation.prep_builders import make_ttm

from cfm.preparation.models import PrepareJob
from cfm.quota.models import Deployment
from cfm.registry.models import Registration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"wide": 1280, "narrow": 390}
API_KEY, ACCESS_KEY, SECRET_KEY = "journey-api-key", "AKIDJOURNEY", "journey-secret-never-shown"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def servers():
    """The imitation and moto, started before the module's worker, whose
    environment (read when it starts) then allows their addresses."""
    pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    from platformserver import PlatformServer

    port = _free_port()
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    s3_url = f"http://127.0.0.1:{port}"
    platform = PlatformServer(api_key=API_KEY, space_id="space-1", ready_after=0.3).start()
    saved = {k: os.environ.get(k) for k in ("CFM_PLATFORM_URLS", "CFM_STORAGE_URLS")}
    os.environ["CFM_PLATFORM_URLS"], os.environ["CFM_STORAGE_URLS"] = platform.url, s3_url
    yield platform, s3_url
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    platform.stop()
    s3.stop()


@pytest.fixture
def stack(servers, worker, settings, tmp_path):
    """The imitation, a fresh bucket, the worker, and cfm's settings pointing at them."""
    import boto3

    from cfm.platform.client import forget_tokens

    server, s3_url = servers
    server.reset(api_key=API_KEY)
    bucket = f"journey-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                 aws_secret_access_key=SECRET_KEY).create_bucket(Bucket=bucket)
    settings.CFM_PLATFORM_URLS = [server.url]
    settings.CFM_STORAGE_URLS = [s3_url]
    settings.VAR_DIR = tmp_path / "var"  # Prepare's work folder, the upload's staging
    settings.CFM_S3_BUCKET = ""  # prepared copies in the media folder
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    forget_tokens()
    yield {"platform": server, "s3": s3_url, "bucket": bucket}
    forget_tokens()


def _shots(page, shot, name: str) -> None:
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"journey-{name}-{label}")
    page.set_viewport_size({"width": WIDTHS["wide"], "height": 900})


def _ttm_archive(tmp_path: Path, name: str) -> Path:
    """A tinytimemixer without tsfm_config.json: the report asks for Prepare (add_tsfm_config)."""
    folder = make_ttm(tmp_path / name)
    archive = tmp_path / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=name)
    return archive


def _sign_up(page, base: str, username: str, account: str) -> None:
    page.goto(f"{base}/accounts/signup/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.locator("#id_account_name").fill(account)
    page.locator("#id_plan").select_option("standard")
    page.locator("form.stacked button[type=submit]").click()
    page.wait_for_url("**/spaces/?welcome=1")


def _create_space(page, name: str) -> None:
    assert page.locator("#first-space").is_visible()
    page.locator("#id_new-name").fill(name)
    page.locator(".space-form button[type=submit]").click()
    page.locator(f'[data-space="{name}"]').wait_for()


def _connect(page, stack, space: str) -> None:
    page.locator(f'[data-space="{space}"] a[href$="/platform/"]').click()
    page.locator("#id_url").fill(stack["platform"].url)
    page.locator("#id_iam_url").fill(stack["platform"].url)
    page.locator("#id_api_key").fill(API_KEY)
    page.locator("#id_space_id").fill("space-1")
    page.locator("#id_endpoint").fill(stack["s3"])
    page.locator("#id_bucket").fill(stack["bucket"])
    page.locator("#id_access_key_id").fill(ACCESS_KEY)
    page.locator("#id_secret_access_key").fill(SECRET_KEY)
    page.locator("#id_connection_id").fill("conn-journey")
    page.locator(".connection-form button[type=submit]").click()
    page.locator("#test-connection").click()
    page.locator("#connection-checks").wait_for()
    for name in ("iam", "deployments", "storage"):
        assert page.locator(f'[data-check="{name}"]').get_attribute("data-ok") == "true", name
    html = page.content()
    assert API_KEY not in html and SECRET_KEY not in html and ACCESS_KEY not in html  # write-only


def _register_and_prepare(page, base: str, archive: Path) -> Registration:
    page.goto(f"{base}/models/new/?via=archive")
    page.set_input_files("#id_archive-archive", str(archive))
    page.locator("#archive-form button[type=submit]").click()
    page.wait_for_url("**/models/*/")
    registration = Registration.objects.get(source=archive.name)
    page.locator("#report").wait_for()  # the worker inspected it; the page polled until the job ended
    registration.refresh_from_db()
    assert registration.report["preparation"] == ["add_tsfm_config"]
    page.locator("#cta-prepare").click()
    page.locator("#prepare-start").click()
    page.wait_for_url(f"**/models/{registration.pk}/prepare/")
    job = PrepareJob.objects.get(registration=registration)
    assert run_prepare(job.pk) == "done"
    page.locator("#prepare-stored").wait_for()  # the polled page swapped in the result
    return registration


def _deploy(page, base: str, registration: Registration, serving_name: str) -> Deployment:
    page.goto(f"{base}/models/{registration.pk}/")
    assert page.locator("#prepared-note").is_visible()
    page.locator("#cta-deploy").click()
    page.locator("#deploy-prepared").wait_for()
    page.locator("#id_serving_name").fill(serving_name)
    page.locator("form.deploy-form button[type=submit]").click()
    page.wait_for_url("**/quota/deployments/*/")
    return Deployment.objects.get(serving_name=serving_name)


def _wait(dep: Deployment, until: str, timeout: float = 60.0) -> Deployment:
    """The deployment once it reaches `until`: the worker's run takes it as far as it goes at once (to
    `initializing`; a delete at once), then the polls run here, as the sweeper would send them."""
    from cfm.platform import tracking

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        dep = Deployment.objects.get(pk=dep.pk)
        if dep.state in (until, "failed"):
            return dep
        if dep.state == "initializing" and dep.platform_state:
            tracking.step(dep)  # a poll that fell due
        time.sleep(0.3)
    return Deployment.objects.get(pk=dep.pk)


def test_sign_up_connect_prepare_deploy_watch_it_become_ready_and_delete_it(stack, live_server, page, tmp_path,
                                                                            shot):
    page.set_default_timeout(20_000)
    page.set_viewport_size({"width": WIDTHS["wide"], "height": 900})
    base = live_server.url
    _sign_up(page, base, "noa", "Noa Labs")
    _shots(page, shot, "first-space")
    _create_space(page, "production")
    assert "Plan only" in page.locator('[data-space="production"]').inner_text()
    _shots(page, shot, "spaces")
    _connect(page, stack, "production")
    _shots(page, shot, "connection")
    page.goto(f"{base}/accounts/spaces/")
    assert "Connected" in page.locator('[data-space="production"]').inner_text()

    registration = _register_and_prepare(page, base, _ttm_archive(tmp_path, "granite-ttm"))
    _shots(page, shot, "prepared")
    assert PrepareJob.objects.get(registration=registration).storage_location not in page.content()
    page.goto(f"{base}/models/{registration.pk}/")
    with page.expect_download() as download:
        page.locator("#prepared-note #prepared-download").click()
    assert download.value.suggested_filename.endswith(".zip")
    _shots(page, shot, "model-prepared")

    dep = _deploy(page, base, registration, "granite_ttm")
    assert dep.registration == registration and dep.space.name == "production"
    assert page.locator("#deployment-live").get_attribute("hx-trigger")  # it follows the deployment
    _shots(page, shot, "deployment-uploading")
    dep = _wait(dep, "ready")
    assert dep.state == "ready", dep.message_key
    page.locator('#dep-state [data-state="ready"]').wait_for()  # the polled page, no reload
    assert page.locator("#inference-url").input_value() == dep.platform["inference_url"]
    assert page.locator("#deployment-live").get_attribute("hx-trigger") is None  # polling stopped
    states = page.locator("#events li").evaluate_all("els => els.map(e => e.dataset.state)")
    assert states[0] == "uploading" and states[-1] == "ready" and {"creating", "initializing"} <= set(states)
    platform = stack["platform"]
    posts = [q.path for q in platform.requests if q.method == "POST" and q.path != "/identity/token"]
    assert posts == ["/ml/v4/models", "/ml/v4/deployments"]  # the connection test only read
    _shots(page, shot, "deployment-ready")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete deployment").click()
    page.wait_for_url("**/usage/")
    dep = _wait(dep, "deleted")
    assert dep.state == "deleted" and not dep.is_active
    assert platform.deployments == {} and platform.models == {}
    page.goto(f"{base}/quota/deployments/{dep.pk}/")
    assert page.locator("#dep-state [data-state]").get_attribute("data-state") == "deleted"
    _shots(page, shot, "deployment-deleted")


def test_the_same_journey_in_japanese_up_to_the_deployment_page(stack, live_server, page, tmp_path, shot):
    page.set_default_timeout(20_000)
    page.set_viewport_size({"width": WIDTHS["wide"], "height": 900})
    base = live_server.url
    page.goto(f"{base}/accounts/signup/")
    page.locator('#langswitch button[lang="ja"]').click()
    page.locator('html[lang="ja"]').wait_for()
    _sign_up(page, base, "haru", "ハル研究室")
    assert "最初のスペース" in page.locator("#first-space h2").inner_text()
    _create_space(page, "本番")
    _shots(page, shot, "spaces-ja")
    _connect(page, stack, "本番")
    assert "接続は正常です" in page.locator("#connection-checks h2").inner_text()
    _shots(page, shot, "connection-ja")

    registration = _register_and_prepare(page, base, _ttm_archive(tmp_path, "granite-ttm-ja"))
    page.goto(f"{base}/models/{registration.pk}/")
    assert "準備済みコピー" in page.locator("#prepared-note").inner_text()
    assert page.locator("#cta-deploy").inner_text() == "準備済みコピーをデプロイ"
    _shots(page, shot, "model-prepared-ja")
    dep = _deploy(page, base, registration, "granite_ja")
    assert dep.space.name == "本番"
    dep = _wait(dep, "ready")
    page.locator('#dep-state [data-state="ready"]').wait_for()
    assert "準備完了" in page.locator("#status-message").inner_text()
    assert "デプロイ" in page.locator("#events").inner_text()
    _shots(page, shot, "deployment-ja")
