"""The journey from sign-up to a running deployment, in a real headless
Chromium against the live server, the platform imitation
(tests/platformserver.py) and a real S3-compatible server (moto): sign up
→ create the first space (the sign-up leads there) → connect it and test
the connection → register an archive that needs Prepare → Prepare → the
model's page shows the prepared copy → Deploy it → watch it become ready
→ delete it. Then the same in Japanese up to the deployment page.
Screenshots at 1280 and 390 px go to SHOTS_DIR.

The background work runs here, in the test's process, through the same
functions a worker runs (the job runtime's run, the tracking's step): the
browser tests' worker (conftest.py) listens on a queue of its own, while
the runtime sends each kind on its own queue."""
from __future__ import annotations

import socket
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from browser_support import PASSWORD
from jobrun import run_latest, run_prepare
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
def s3_url():
    pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def stack(settings, tmp_path, s3_url):
    """The imitation, a fresh bucket, and cfm's settings pointing at both."""
    import boto3
    from platformserver import PlatformServer

    from cfm.platform.client import forget_tokens

    server = PlatformServer(api_key=API_KEY, space_id="space-1", ready_after=0.3).start()
    bucket = f"journey-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                 aws_secret_access_key=SECRET_KEY).create_bucket(Bucket=bucket)
    settings.CFM_PLATFORM_URLS = [server.url]
    settings.CFM_STORAGE_URLS = [s3_url]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"  # Prepare's work folder, the upload's staging
    settings.CFM_S3_BUCKET = ""  # prepared copies in the media folder
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    forget_tokens()
    yield {"platform": server, "s3": s3_url, "bucket": bucket}
    server.stop()
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
    assert run_latest(registration) == "done"  # the inspection
    page.locator("#report").wait_for()  # the page polled until the job ended
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


def _drive(dep: Deployment, until: str, timeout: float = 30.0) -> Deployment:
    """The tracking job's steps, as the worker runs them, until the deployment reaches `until`."""
    from cfm.platform import tracking

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        dep = Deployment.objects.get(pk=dep.pk)
        if dep.state == until:
            return dep
        delay = tracking.step(dep)
        if delay is None:
            return Deployment.objects.get(pk=dep.pk)
        time.sleep(min(delay, 0.2))
    return Deployment.objects.get(pk=dep.pk)


def test_sign_up_connect_prepare_deploy_watch_it_become_ready_and_delete_it(live_server, page, tmp_path, shot,
                                                                            stack):
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
    dep = _drive(dep, "ready")
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
    dep = _drive(dep, "deleted")
    assert dep.state == "deleted" and not dep.is_active
    assert platform.deployments == {} and platform.models == {}
    page.goto(f"{base}/quota/deployments/{dep.pk}/")
    assert page.locator("#dep-state [data-state]").get_attribute("data-state") == "deleted"
    _shots(page, shot, "deployment-deleted")


def test_the_same_journey_in_japanese_up_to_the_deployment_page(live_server, page, tmp_path, shot, stack):
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
    dep = _drive(dep, "ready")
    page.locator('#dep-state [data-state="ready"]').wait_for()
    assert "準備完了" in page.locator("#status-message").inner_text()
    assert "デプロイ" in page.locator("#events").inner_text()
    _shots(page, shot, "deployment-ja")
