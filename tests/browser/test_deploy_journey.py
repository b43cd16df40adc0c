"""The journey from sign-up to a deployment, in a real headless Chromium
against the live server and a real Celery worker (tests/browser/conftest.py):
sign up → create the first space (the sign-up leads there) → register an
archive that needs Prepare → Prepare → the model's page shows the prepared
copy → Deploy it → the deployment's page → delete it. Then the same in
Japanese up to the deployment page. Screenshots at 1280 and 390 px go to
SHOTS_DIR."""
from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from browser_support import PASSWORD
from jobrun import run_prepare
from preparation.prep_builders import make_ttm

from cfm.preparation.models import PrepareJob
from cfm.quota.models import Deployment
from cfm.registry.models import Registration

pytestmark = pytest.mark.browser

WIDTHS = {"wide": 1280, "narrow": 390}


@pytest.fixture(autouse=True)
def _prepare_here(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"  # Prepare's work folder
    settings.CFM_S3_BUCKET = ""  # prepared copies in the media folder the worker fixture sets


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


def _sign_up(page, base: str, username: str, account: str, *, labels: dict) -> None:
    page.goto(f"{base}/accounts/signup/")
    page.get_by_label(labels["username"], exact=True).fill(username)
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.locator("#id_account_name").fill(account)
    page.locator("#id_plan").select_option("standard")
    page.locator("form.stacked button[type=submit]").click()
    page.wait_for_url("**/spaces/?welcome=1")


def _register_and_prepare(page, base: str, archive: Path) -> Registration:
    page.goto(f"{base}/models/new/?via=archive")
    page.set_input_files("#id_archive-archive", str(archive))
    page.locator("#archive-form button[type=submit]").click()
    page.wait_for_url("**/models/*/")
    page.locator("#report").wait_for()  # the worker inspected it
    registration = Registration.objects.get(source=archive.name)
    assert registration.report["preparation"] == ["add_tsfm_config"] and not registration.report["deployable"]
    page.locator(f'a[href$="/models/{registration.pk}/prepare/"]').first.click()
    page.locator("#prepare-start").click()
    page.wait_for_url(f"**/models/{registration.pk}/prepare/")
    job = PrepareJob.objects.get(registration=registration)
    # Prepare's own queue (cfm-prepare) is not this module's worker's: the job runs here, as a worker runs it.
    assert run_prepare(job.pk) == "done"
    page.locator("#prepare-stored").wait_for()  # the polled page swapped in the result
    return registration


def test_sign_up_create_a_space_prepare_deploy_and_delete(worker, live_server, page, tmp_path, shot):
    page.set_default_timeout(20_000)
    page.set_viewport_size({"width": WIDTHS["wide"], "height": 900})
    base = live_server.url
    _sign_up(page, base, "noa", "Noa Labs", labels={"username": "Username"})
    assert page.locator("#first-space").is_visible()
    _shots(page, shot, "first-space")
    page.get_by_label("Space name").fill("production")
    page.get_by_role("button", name="Create space").click()
    page.locator('[data-space="production"]').wait_for()
    assert "Plan only" in page.locator('[data-space="production"]').inner_text()
    _shots(page, shot, "spaces")

    registration = _register_and_prepare(page, base, _ttm_archive(tmp_path, "granite-ttm"))
    _shots(page, shot, "prepared")
    assert page.locator("#prepared-download").is_visible()
    assert str(Path(PrepareJob.objects.get(registration=registration).storage_location)) not in page.content()

    page.goto(f"{base}/models/{registration.pk}/")
    assert page.locator("#prepared-note").is_visible()
    assert page.locator("#reg-status").inner_text().startswith("Deployable")
    with page.expect_download() as download:
        page.locator("#prepared-note #prepared-download").click()
    assert download.value.suggested_filename.endswith(".zip")
    _shots(page, shot, "model-prepared")
    page.get_by_role("link", name="Deploy the prepared copy").click()
    page.locator("#deploy-prepared").wait_for()
    page.get_by_label("Serving name").fill("granite_ttm")
    page.locator("form.deploy-form button[type=submit]").click()
    page.wait_for_url("**/quota/deployments/*/")
    dep = Deployment.objects.get(serving_name="granite_ttm")
    assert dep.registration == registration and dep.space.name == "production"
    _shots(page, shot, "deployment")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete deployment").click()
    page.wait_for_url("**/usage/")
    dep.refresh_from_db()
    assert not dep.is_active


def test_the_same_journey_in_japanese_up_to_the_deployment_page(worker, live_server, page, tmp_path, shot):
    page.set_default_timeout(20_000)
    page.set_viewport_size({"width": WIDTHS["wide"], "height": 900})
    base = live_server.url
    page.goto(f"{base}/accounts/signup/")
    page.locator('#langswitch button[lang="ja"]').click()
    page.locator('html[lang="ja"]').wait_for()
    _sign_up(page, base, "haru", "ハル研究室", labels={"username": "ユーザー名"})
    assert "最初のスペース" in page.locator("#first-space h2").inner_text()
    page.get_by_label("スペース名").fill("本番")
    page.get_by_role("button", name="スペースを作成").click()
    page.locator('[data-space="本番"]').wait_for()
    _shots(page, shot, "spaces-ja")

    registration = _register_and_prepare(page, base, _ttm_archive(tmp_path, "granite-ttm-ja"))
    page.goto(f"{base}/models/{registration.pk}/")
    assert "準備済みコピー" in page.locator("#prepared-note").inner_text()
    _shots(page, shot, "model-prepared-ja")
    page.get_by_role("link", name="準備済みコピーをデプロイ").click()
    page.locator("#deploy-prepared").wait_for()
    page.locator("#id_serving_name").fill("granite_ja")
    page.locator("form.deploy-form button[type=submit]").click()
    page.wait_for_url("**/quota/deployments/*/")
    assert Deployment.objects.filter(serving_name="granite_ja", space__name="本番").exists()
    _shots(page, shot, "deployment-ja")
