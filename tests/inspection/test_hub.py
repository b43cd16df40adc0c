"""The Hub as a source: the real huggingface_hub client against a local Hub
(tests/hubserver.py), through the command line as a user runs it and
in-process where only the engine's behaviour matters."""
from __future__ import annotations

import json
import struct
import time

import pytest
from modelfactory import LLAMA3_70B, llama_config, make_model, make_tiny_real

from cfm.inspection import InspectOptions, SourceError, inspect, inspect_source
from cfm.inspection.hub import open_hub, parse_repo_spec
from cfm.inspection.limits import InspectLimits

SECRET = "hf_secret_token_for_tests"


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub-models")
    return {
        "tiny": make_tiny_real(root / "tiny"),
        "tiny_v2": make_tiny_real(root / "tiny_v2", llama_config(hidden=16, layers=3, heads=4, kv_heads=2,
                                                                 intermediate=32, vocab=64)),
        "70b": make_model(root / "70b", LLAMA3_70B, shards=30),
    }


def _comparable(report: dict) -> dict:
    # `source` names where it came from; `files` counts what this source read
    return {k: v for k, v in report.items() if k not in ("source", "files")}


class _Done:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def command(capsys):
    """`cfm_inspect` in this process (a subprocess costs a second and a half
    of start-up; the exit status, stdout and stderr are the same)."""
    from django.core.management import call_command

    def run(*args) -> _Done:
        capsys.readouterr()
        try:
            call_command("cfm_inspect", *map(str, args))
            code = 0
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return _Done(code, out, err)

    return run


def _assert_unreadable(proc, *, words: tuple[str, ...] = ()) -> str:
    """The contract for exit 2: one line on stderr, nothing on stdout, no traceback."""
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --- reports --------------------------------------------------------------------------------------------------
def test_hub_repo_gives_the_same_report_as_the_folder(hub_server, models, run_inspect):
    sha = hub_server.add_repo("org/tiny", models["tiny"])
    proc, hub_report = run_inspect("org/tiny", "--json")
    assert proc.returncode == 0, proc.stderr
    local_report = inspect(str(models["tiny"])).to_dict()
    assert hub_report["source"] == f"hf://org/tiny@{sha}"
    assert _comparable(hub_report) == _comparable(local_report)


def test_hf_uri_and_revision_are_pinned_to_the_resolved_commit(hub_server, models, command):
    hub_server.add_repo("org/tiny", models["tiny"])
    v2 = hub_server.add_revision("org/tiny", models["tiny_v2"], ref="v2")
    proc = command("hf://org/tiny", "--revision", "v2", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["source"] == f"hf://org/tiny@{v2}"
    assert report == {**report, **_comparable(inspect(str(models["tiny_v2"])).to_dict())}
    reads = [e["path"] for e in hub_server.log if "/resolve/" in e["path"]]
    assert reads and all(f"/resolve/{v2}/" in p for p in reads)  # the branch name is used once, to resolve


def test_a_commit_sha_and_a_pasted_report_source_both_work(hub_server, models):
    sha = hub_server.add_repo("org/tiny", models["tiny"])
    hub_server.add_revision("org/tiny", models["tiny_v2"], ref="main")  # main moved on
    assert inspect("org/tiny", revision=sha).source == f"hf://org/tiny@{sha}"
    assert inspect(f"hf://org/tiny@{sha}").source == f"hf://org/tiny@{sha}"
    pr = hub_server.add_revision("org/tiny", models["tiny"], ref="refs/pr/1")  # a revision with slashes
    assert inspect("org/tiny", revision="refs/pr/1").source == f"hf://org/tiny@{pr}"


def test_legacy_single_segment_repo_id(hub_server, models):
    sha = hub_server.add_repo("gpt2", models["tiny"])
    assert inspect("gpt2").source == f"hf://gpt2@{sha}"


def test_70b_of_30_shards_pulls_under_2_mb_and_no_weights(hub_server, models):
    hub_server.add_repo("meta/llama-70b", models["70b"])
    report = inspect("meta/llama-70b").to_dict()
    assert report["parameters"] > 70e9 and report["parameters_exact"]
    assert _comparable(report) == _comparable(inspect(str(models["70b"])).to_dict())
    assert hub_server.bytes_sent < 2_000_000, hub_server.bytes_sent
    assert report["files"]["bytes_read"] <= hub_server.bytes_sent
    # Weights: of each shard, the header and at most a few kB beyond it, never the tensor data.
    past_header: dict[str, int] = {}
    for _repo, path, start, end in hub_server.served:
        if path.endswith(".safetensors"):
            with open(models["70b"] / path, "rb") as fh:
                header_end = 8 + struct.unpack("<Q", fh.read(8))[0]
            past_header[path] = past_header.get(path, 0) + max(0, end - max(start, header_end))
    assert max(past_header.values()) < 16_384, past_header
    shards = set(past_header)
    assert len(shards) == len(set(json.loads((models["70b"] / "model.safetensors.index.json").read_text())
                                  ["weight_map"].values()))


def test_headers_longer_than_the_first_read_are_read_in_full(hub_server, tmp_path):
    """A header past the index's estimate (big __metadata__) or past 100 kB
    (a single file of many tensors) costs one more request, not a wrong report."""
    cfg = llama_config(hidden=64, layers=40, heads=4, kv_heads=2, intermediate=128, vocab=256)
    sharded = make_model(tmp_path / "sharded", cfg, shards=3, metadata={"format": "pt", "notes": "x" * 150_000})
    wide = make_model(tmp_path / "wide", cfg, {f"layer.{i}.weight": ("BF16", [64, 64]) for i in range(2000)})
    for name, folder in (("org/sharded", sharded), ("org/wide", wide)):
        hub_server.add_repo(name, folder)
        hub_server.reset_counters()
        assert _comparable(inspect(name).to_dict()) == _comparable(inspect(str(folder)).to_dict())
        assert any(e["range"] and not e["range"].startswith("bytes=0-") for e in hub_server.log)  # the rest


def test_server_that_ignores_range_still_costs_only_what_was_asked(hub_server, models):
    """A proxy that drops Range answers 200 with the whole file: we stop reading."""
    hub_server.add_repo("org/big", models["70b"])
    hub_server.ignore_range = True
    source = open_hub("org/big", limits=InspectLimits())
    shard = "model-00001-of-00030.safetensors"
    with open(models["70b"] / shard, "rb") as fh:
        raw = fh.read(200)
    assert source.read_range(shard, 0, 8) == raw[:8]
    assert source.read_range(shard, 100, 50) == raw[100:150]
    assert source.bytes_read < 1_000_000  # of a shard of gigabytes


# --- errors ---------------------------------------------------------------------------------------------------
def test_missing_repo_exits_2_with_repo_not_found(hub_server, run_inspect):
    proc, _ = run_inspect("org/nothing", "--json")  # a real process: nothing else may reach stderr
    _assert_unreadable(proc, words=("org/nothing", "no Hub repo"))


def test_missing_revision_exits_2_naming_the_revision(hub_server, models, command):
    hub_server.add_repo("org/tiny", models["tiny"])
    proc = command("org/tiny", "--revision", "no-such-branch", "--json")
    _assert_unreadable(proc, words=("no-such-branch",))
    with pytest.raises(SourceError) as exc:
        inspect("org/tiny", revision="no-such-branch")
    assert exc.value.code == "revision_not_found"


@pytest.mark.parametrize("spec", ["org/name/extra", "org--name", "org/.name", "-org/x", "org/name.git",
                                  "hf://", "a" * 97, "org/na me"])
def test_malformed_repo_id_is_refused_before_any_request(hub_server, spec):
    with pytest.raises(SourceError) as exc:
        open_hub(spec, limits=InspectLimits())
    assert exc.value.code == "source_unreadable"
    assert hub_server.requests == 0


def test_malformed_repo_id_exits_2_without_a_request(hub_server, command):
    proc = command("org/name/extra", "--json")
    _assert_unreadable(proc, words=("Hub repo id",))
    assert hub_server.requests == 0


def test_gated_repo_without_token_asks_for_one(hub_server, models, command):
    hub_server.add_repo("meta/gated", models["tiny"], gated="manual", token=SECRET)
    proc = command("meta/gated", "--json")
    _assert_unreadable(proc, words=("gated", "token"))
    hub_server.tokens.add("hf_someone_without_access")
    with pytest.raises(SourceError) as exc:
        inspect("meta/gated", token="hf_someone_without_access")
    assert exc.value.code == "access_denied" and "request access" in exc.value.message
    assert "hf_someone_without_access" not in exc.value.message
    assert hub_server.log[-1]["status"] == 403


def test_unknown_token_is_refused_even_on_a_public_repo(hub_server, models):
    hub_server.add_repo("org/tiny", models["tiny"])
    with pytest.raises(SourceError) as exc:
        inspect("org/tiny", token="hf_expired_token_1234")
    assert exc.value.code == "access_denied" and "invalid or expired" in exc.value.message
    assert "hf_expired_token_1234" not in exc.value.message


def test_gated_repo_with_token_is_read_and_the_token_stays_out_of_the_report(hub_server, models, command):
    hub_server.add_repo("meta/gated", models["tiny"], gated="manual", token=SECRET)
    proc = command("meta/gated", "--token", SECRET, "--json")
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    assert all(e["auth"] for e in hub_server.log if "/resolve/" in e["path"])


def test_private_repo_without_token_is_not_found(hub_server, models):
    hub_server.add_repo("org/private", models["tiny"], private=True, token=SECRET)
    with pytest.raises(SourceError) as exc:
        inspect("org/private")
    assert exc.value.code == "repo_not_found" and "token" in exc.value.message
    assert inspect("org/private", token=SECRET).source.startswith("hf://org/private@")


def test_machine_token_is_not_sent_when_none_is_given(hub_server, models, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)  # e.g. the worker's own login: a user must not borrow it
    hub_server.add_repo("org/private", models["tiny"], private=True, token=SECRET)
    with pytest.raises(SourceError):
        inspect("org/private")
    assert not any(e["auth"] for e in hub_server.log)


@pytest.mark.parametrize("kind", [503, 429, "reset"])
def test_transient_faults_are_retried(hub_server, models, kind):
    hub_server.add_repo("org/tiny", models["tiny"])
    hub_server.fail_next(2, kind, retry_after=0 if kind == 429 else None)
    report = inspect("org/tiny")
    assert report.deployable
    assert [e["status"] for e in hub_server.log[:3]] == [kind, kind, 200]


def test_503_then_success_through_the_command(hub_server, models, command):
    hub_server.add_repo("org/tiny", models["tiny"])
    hub_server.fail_next(2, 503)
    proc = command("org/tiny", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["source"].startswith("hf://org/tiny@")


def test_permanent_503_gives_up_after_bounded_retries(hub_server, models, command):
    hub_server.add_repo("org/tiny", models["tiny"])
    hub_server.fail_always = 503
    started = time.monotonic()
    proc = command("org/tiny", "--json")
    assert time.monotonic() - started < 15
    _assert_unreadable(proc, words=("503",))
    assert hub_server.requests == 5  # one try and CFM_HUB_MAX_RETRIES (4 by default) retries, no more
    with pytest.raises(SourceError) as exc:
        open_hub("org/tiny", limits=InspectLimits(), attempts=2)
    assert exc.value.code == "hub_unavailable"


def test_hub_going_down_mid_inspection_stops_every_shard_read(hub_server, models):
    hub_server.add_repo("org/big", models["70b"])
    source = open_hub("org/big", limits=InspectLimits(), attempts=2)

    def progress(step, done, total, nbytes):
        if step == "reading_headers" and done == 0:
            hub_server.fail_always = 503
            hub_server.reset_counters()

    with pytest.raises(SourceError) as exc:
        inspect_source(source, InspectOptions(progress=progress))
    assert exc.value.code == "hub_unavailable"
    # at most the reads already in flight spend their retries; 29 shards x 2 attempts would be 58
    assert hub_server.requests <= source.parallelism * 2


def test_long_retry_after_is_not_waited_for(hub_server, models):
    hub_server.add_repo("org/tiny", models["tiny"])
    hub_server.fail_next(1, 429, retry_after=3600)
    started = time.monotonic()
    with pytest.raises(SourceError) as exc:
        open_hub("org/tiny", limits=InspectLimits())
    assert exc.value.code == "hub_unavailable" and "3600" in exc.value.message
    assert time.monotonic() - started < 5 and hub_server.requests == 1  # not an hour


def test_answers_are_not_retried(hub_server):
    with pytest.raises(SourceError) as exc:
        open_hub("org/nothing", limits=InspectLimits())
    assert exc.value.code == "repo_not_found"
    assert hub_server.requests == 1


def test_rate_limit_header_is_honoured(hub_server, models):
    hub_server.add_repo("org/tiny", models["tiny"])
    hub_server.fail_next(1, 429, ratelimit='"api";r=0;t=3600')
    with pytest.raises(SourceError) as exc:
        open_hub("org/tiny", limits=InspectLimits())
    assert exc.value.code == "hub_unavailable" and "3600" in exc.value.message


def test_something_else_than_the_hub_is_unavailable(hub_server, models):
    hub_server.add_repo("org/tiny", models["tiny"])
    hub_server.fail_next(1, "portal")  # 200 with an HTML page, as a captive portal answers
    with pytest.raises(SourceError) as exc:
        open_hub("org/tiny", limits=InspectLimits())
    assert exc.value.code == "hub_unavailable" and "HF_ENDPOINT" in exc.value.message


def test_unreachable_hub_is_unavailable(hub_server, monkeypatch):
    hub_server.stop()
    with pytest.raises(SourceError) as exc:
        open_hub("org/tiny", limits=InspectLimits(), attempts=2)
    assert exc.value.code == "hub_unavailable"


def test_slow_hub_times_out(hub_server, models):
    hub_server.add_repo("org/tiny", models["tiny"])
    hub_server.latency = 1.0
    started = time.monotonic()
    with pytest.raises(SourceError) as exc:
        open_hub("org/tiny", limits=InspectLimits(), timeout=0.2, attempts=2)
    assert exc.value.code == "timeout"
    assert time.monotonic() - started < 3  # 2 x 0.2 s and a backoff, not 2 x the hub's 1 s; slack for a busy CI


def test_repo_spec_forms():
    assert parse_repo_spec("hf://org/name") == ("org/name", None)
    assert parse_repo_spec("hf://models/org/name") == ("org/name", None)
    assert parse_repo_spec("org/name@v1") == ("org/name", "v1")
    assert parse_repo_spec("gpt2", "main") == ("gpt2", "main")
    with pytest.raises(SourceError):
        parse_repo_spec("org/name@v1", "v2")


@pytest.mark.parametrize("retries, requests", [("0", 1), ("2", 3)])
def test_cfm_inspect_makes_the_attempts_the_settings_say(hub_server, models, run_inspect, retries, requests):
    hub_server.add_repo("org/tiny", models["tiny"])
    hub_server.fail_always = 503
    proc, _ = run_inspect("org/tiny", "--json", env={"CFM_HUB_MAX_RETRIES": retries})
    assert proc.returncode == 2 and f"({requests} attempt" in proc.stderr
    assert hub_server.requests == requests
