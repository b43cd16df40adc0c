"""`manage.py cfm_inspect`: the report alone on stdout with --json, a
summary without, exit 0/1/2, --fail-on warn, argument validation, and
never a traceback. A few run as real subprocesses (as users and CI run
it); the rest run the same command line in-process, which is faster."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.management import ManagementUtility
from inspect_support import CONTRACT_CHECK_IDS, assert_contract, folder, llama_cfg, real_safetensors
from modelfactory import evil_pickle, write_json

from cfm.catalog import TSFM_CONFIG_TEMPLATE

ROOT = Path(__file__).resolve().parents[2]


def cli(capsys, *args) -> tuple[int, str, str]:
    """The command line in-process: (exit status, stdout, stderr)."""
    code = 0
    try:
        ManagementUtility(["manage.py", "cfm_inspect", *map(str, args)]).execute()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _good(tmp_path, **cfg):
    path = folder(tmp_path / "m", llama_cfg(**cfg))
    real_safetensors(path / "model.safetensors")
    return path


# -- as subprocesses, the way the contract is judged (started together: each is a Django start-up) -----------------
def _subprocess_cases(base: Path) -> dict[str, Path]:
    cases = {"good": _good(base / "good"),
             "unknown_arch": _good(base / "unknown", model_type="bert", architectures=["BertModel"])}
    cases["missing"] = base / "missing"
    cases["not_archive"] = base / "weights.safetensors"
    cases["not_archive"].write_bytes(b"\0" * 64)
    cases["traversal_zip"] = base / "evil.zip"
    with zipfile.ZipFile(cases["traversal_zip"], "w") as zf:
        zf.writestr("config.json", json.dumps(llama_cfg()))
        zf.writestr("../../evil.sh", "rm -rf /")
    path = folder(base / "pickle", llama_cfg(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                                             num_key_value_heads=8, intermediate_size=14336, vocab_size=128256))
    payload = evil_pickle(base / "pwned")
    (path / "pytorch_model.bin").write_bytes(payload)
    (path / "training_args.bin").write_bytes(payload)
    cases["pickle"] = path
    hostile = _good(base / "hostile")
    (hostile / "model.safetensors").write_bytes(struct.pack("<Q", 2**63) + b"{}")
    cases["hostile_header"] = hostile
    return cases


@pytest.fixture(scope="module")
def procs(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    cases = _subprocess_cases(base)
    running = {k: subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "cfm_inspect", str(p), "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
               for k, p in cases.items()}
    done = {}
    for k, proc in running.items():
        out, err = proc.communicate(timeout=120)
        done[k] = (proc.returncode, out, err)
    return base, done


def test_json_report_alone_on_stdout_exit_0(procs):
    code, out, err = procs[1]["good"]
    data = json.loads(out)
    assert code == 0 and "Traceback" not in err
    assert_contract(data)
    assert data["deployable"] is True


def test_not_deployable_exits_1(procs):
    code, out, err = procs[1]["unknown_arch"]
    assert code == 1 and json.loads(out)["deployable"] is False and "Traceback" not in err


@pytest.mark.parametrize("case", ["missing", "not_archive", "traversal_zip"])
def test_unreadable_source_exits_2_with_one_line(procs, case):
    code, out, err = procs[1][case]
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cfm_inspect: ") and "Traceback" not in err
    assert not (procs[0].parent / "evil.sh").exists()


def test_malicious_pickle_is_never_unpickled(procs):
    code, out, err = procs[1]["pickle"]
    assert code == 0, err
    assert not (procs[0] / "pwned").exists()
    data = json.loads(out)
    weights = next(c for c in data["checks"] if c["id"] == "weights_format")
    assert weights["status"] == "warn" and "pytorch_model.bin" in weights["message"]
    assert data["parameters_exact"] is False and 7.9e9 < data["parameters"] < 8.1e9


def test_hostile_header_through_the_command(procs):
    code, out, err = procs[1]["hostile_header"]
    assert code == 1 and "Traceback" not in err
    data = json.loads(out)
    assert next(c for c in data["checks"] if c["id"] == "safetensors_header")["status"] == "fail"


# -- in-process ---------------------------------------------------------------------------------------------------
def test_summary_without_json(tmp_path, capsys):
    code, out, err = cli(capsys, _good(tmp_path))
    assert code == 0 and "DEPLOYABLE" in out and "NOT DEPLOYABLE" not in out
    for cid in CONTRACT_CHECK_IDS:
        assert cid in out
    assert "watsonx-cfm-caikit-1.1" in out and "small" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_summary_of_a_failing_model_shows_the_remedy(tmp_path, capsys):
    path = _good(tmp_path)
    (path / "tokenizer.json").unlink()
    code, out, _ = cli(capsys, path)
    assert code == 1 and "NOT DEPLOYABLE" in out and "No tokenizer" in out and "→" in out


@pytest.mark.parametrize("json_flag", [True, False])
def test_fail_on_warn(tmp_path, capsys, json_flag):
    path = _good(tmp_path, auto_map={"AutoModel": "x.Y"})  # trust_remote_code: warn
    extra = ["--json"] if json_flag else []
    assert cli(capsys, path, *extra)[0] == 0
    assert cli(capsys, path, *extra, "--fail-on", "warn")[0] == 1
    assert cli(capsys, _good(tmp_path / "clean"), *extra, "--fail-on", "warn")[0] == 0


@pytest.mark.parametrize("args, words", [
    (["--payload", "abc"], "payload"), (["--payload", "0"], "payload"), (["--payload", "15x0"], "payload"),
    (["--payload", "-3"], "payload"),
    (["--concurrent-users", "0"], "at least 1"), (["--concurrent-users", "many"], "whole number"),
    (["--concurrent-users", "-2"], "at least 1"), (["--fail-on", "never"], "fail-on"),
])
def test_bad_arguments_are_refused(tmp_path, capsys, args, words):
    code, out, err = cli(capsys, _good(tmp_path), "--json", *args)
    assert code == 2 and out == "" and words in err and "Traceback" not in err


def test_time_series_figures_through_the_command(tmp_path, capsys):
    path = folder(tmp_path / "ttm", {"model_type": "tinytimemixer", "architectures": ["TinyTimeMixerForPrediction"]},
                  tokenizer=False)
    real_safetensors(path / "model.safetensors")
    write_json(path / "tsfm_config.json", TSFM_CONFIG_TEMPLATE)
    code, out, _ = cli(capsys, path, "--json", "--concurrent-users", "20", "--payload", "15x40")
    d = json.loads(out)
    assert code == 0 and d["configuration"] == "medium" and d["family"] == "time_series"
    code, out, _ = cli(capsys, path, "--json", "--concurrent-users", "200", "--payload", "512")
    d = json.loads(out)
    size = next(c for c in d["checks"] if c["id"] == "size")
    assert (code, d["configuration"], size["status"]) == (0, "extra_large", "warn")
    assert cli(capsys, path, "--json", "--concurrent-users", "200", "--fail-on", "warn")[0] == 1


def test_archive_source_through_the_command(tmp_path, capsys):
    src = _good(tmp_path)
    dest = tmp_path / "model.zip"
    with zipfile.ZipFile(dest, "w") as zf:
        for p in src.iterdir():
            zf.write(p, f"model/{p.name}")
    code, out, err = cli(capsys, dest, "--json")
    d = json.loads(out)
    assert code == 0 and d["source"] == str(dest) and d["deployable"] is True


@pytest.mark.parametrize("content", [b"PK\x03\x04garbage", b"\x1f\x8b\x08\x00trunc"])
def test_corrupt_archive_exits_2(tmp_path, capsys, content):
    dest = tmp_path / ("x.zip" if content.startswith(b"PK") else "x.tar.gz")
    dest.write_bytes(content)
    code, out, err = cli(capsys, dest, "--json")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and dest.name in err


def test_relative_path_is_reported_absolute(tmp_path, capsys, monkeypatch):
    _good(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(capsys, "./m", "--json")
    assert code == 0 and json.loads(out)["source"] == str((tmp_path / "m").resolve())


def test_surrogates_in_the_model_never_break_the_output(tmp_path, capsys):
    path = _good(tmp_path)
    (path / "config.json").write_text('{"model_type": "llama\\ud800", "architectures": ["LlamaForCausalLM"]}')
    for args in (["--json"], []):
        code, out, err = cli(capsys, path, *args)
        assert code in (0, 1) and "Traceback" not in err and "llama" in out
    json.loads(cli(capsys, path, "--json")[1])
