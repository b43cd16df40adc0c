"""The engine alone: `cfm-inspect` (cfm/inspection/cli.py) runs with Django,
Celery and django-ninja unimportable, and says exactly what `manage.py
cfm_inspect` says. (.ci/engine-alone also installs it into a fresh venv with
`pip install .` and runs it there; these tests keep the suite honest without
a network.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from inspect_support import assert_contract, folder, llama_cfg, real_safetensors
from modelfactory import make_tiny_real

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("django", "celery", "kombu", "ninja", "psycopg", "redis", "billiard")

# Runs cli.main with the web stack unimportable: an import of any of it fails loudly.
_ALONE = f"""
import sys
BLOCKED = {BLOCKED!r}
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} imported by the engine alone")
sys.meta_path.insert(0, _Block())
from cfm.inspection.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded
sys.exit(code)
"""


def alone(*args, env=None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environ.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run([sys.executable, "-c", _ALONE, *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=environ)


def _good(path: Path) -> Path:
    model = folder(path, llama_cfg())
    real_safetensors(model / "model.safetensors")
    return model


def test_engine_and_catalog_import_without_the_web_stack():
    code = f"""
import sys
BLOCKED = {BLOCKED!r}
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(name)
sys.meta_path.insert(0, _Block())
import cfm, cfm.catalog, cfm.inspection, cfm.inspection.cli, cfm.inspection.hub
print(cfm.catalog.architecture_for("llama").family)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "general"


def test_the_engine_alone_imports_no_hub_client_for_a_folder():
    """Start-up: a local inspection never pays for huggingface_hub's import."""
    code = ("import sys; from cfm.inspection.cli import main; import cfm.inspection.engine; "
            "print(sorted(m for m in sys.modules if m.startswith(('huggingface_hub', 'httpx'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_console_script_is_declared_and_the_web_stack_is_an_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["cfm-inspect"] == "cfm.inspection.cli:main"
    core = " ".join(project["dependencies"]).lower()
    for web in ("django", "celery", "psycopg", "ninja", "redis", "gunicorn"):
        assert web not in core, web
    assert any(d.lower().startswith("django==") for d in project["optional-dependencies"]["web"])


def test_same_output_and_status_as_the_management_command(tmp_path, run_inspect):
    good = _good(tmp_path / "good")
    bad = folder(tmp_path / "bad", llama_cfg(), tokenizer=False)
    real_safetensors(bad / "model.safetensors")
    for model, status in ((good, 0), (bad, 1)):
        for extra in (["--json"], []):
            mine = alone(model, *extra)
            theirs, _ = run_inspect(model, *extra)
            assert (mine.returncode, theirs.returncode) == (status, status), mine.stderr + theirs.stderr
            assert mine.stdout == theirs.stdout
            assert mine.stderr == theirs.stderr == ""
    assert_contract(json.loads(alone(good, "--json").stdout))


@pytest.mark.parametrize("args", [["{missing}", "--json"], ["{good}", "--payload", "abc"],
                                  ["{good}", "--fail-on", "never"]])
def test_errors_are_the_commands_errors_under_its_own_name(tmp_path, run_inspect, args):
    paths = {"missing": tmp_path / "missing", "good": _good(tmp_path / "good")}
    args = [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]
    mine = alone(*args)
    theirs, _ = run_inspect(*args)
    assert mine.returncode == theirs.returncode == 2 and mine.stdout == theirs.stdout == ""
    assert "Traceback" not in mine.stderr
    last = mine.stderr.strip().splitlines()[-1]
    assert last.startswith("cfm-inspect: ") and "cfm_inspect" not in mine.stderr
    # the same words after the program's name (argparse writes `manage.py cfm_inspect: error: ...`)
    assert last.partition("cfm-inspect: ")[2] == theirs.stderr.strip().splitlines()[-1].partition("cfm_inspect: ")[2]


def test_hub_repo_and_fail_on_warn_as_a_model_repository_ci_runs_it(tmp_path, hub_server):
    model = make_tiny_real(tmp_path / "tiny")
    sha = hub_server.add_repo("org/tiny", model)
    proc = alone("org/tiny", "--json", "--fail-on", "warn")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["source"] == f"hf://org/tiny@{sha}"
    inside = subprocess.run([sys.executable, "-c", _ALONE, ".", "--json", "--fail-on", "warn"], capture_output=True,
                            text=True, timeout=120, cwd=model, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert inside.returncode == 0, inside.stderr
    assert json.loads(inside.stdout)["source"] == str(model.resolve())


@pytest.mark.parametrize("env, words", [({"CFM_MAX_HEADER_BYTES": "lots"}, "CFM_MAX_HEADER_BYTES='lots' is not"),
                                        ({"CFM_HUB_MAX_RETRIES": "-1"}, "below the minimum 0")])
def test_bad_settings_are_one_line(tmp_path, env, words):
    proc = alone(_good(tmp_path / "m"), "--json", env=env)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr == f"cfm-inspect: {proc.stderr[13:]}"
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr


def test_caps_come_from_the_same_settings(tmp_path):
    """CFM_MAX_CONFIG_BYTES below config.json's size: config_valid fails, as on the server."""
    model = _good(tmp_path / "m")
    (model / "config.json").write_text(json.dumps({**llama_cfg(), "pad": "x" * 3000}))
    proc = alone(model, "--json", env={"CFM_MAX_CONFIG_BYTES": "1024"})
    checks = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    assert proc.returncode == 1 and checks["config_valid"]["status"] == "fail"


def test_worker_pool_processes_warm_the_hub_client_before_their_first_job():
    code = """
import sys
from celery.signals import worker_process_init
import cfm.celery
from cfm.inspection import hubclient
assert "cfm.inspection.hub" not in sys.modules and hubclient._ssl_context is None
worker_process_init.send(sender=None)
assert "cfm.inspection.hub" in sys.modules and hubclient._ssl_context is not None
print("warm")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and proc.stdout.strip() == "warm", proc.stderr
