"""The published JSON Schema of the report (cfm/inspection/report_schema.json)
accepts the reports the engine writes, good and bad alike."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from inspect_support import folder, llama_cfg, raw_header_file, real_safetensors, run
from modelfactory import write_json

from cfm.catalog import TSFM_CONFIG_TEMPLATE

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "cfm/inspection/report_schema.json").read_text())


def _cases(tmp_path: Path):
    good = folder(tmp_path / "good", llama_cfg(rope_scaling={"rope_type": "llama3", "factor": 8.0}))
    real_safetensors(good / "model.safetensors")
    yield good
    yield folder(tmp_path / "noconfig", None)
    binonly = folder(tmp_path / "bin", llama_cfg(), tokenizer=False)
    (binonly / "pytorch_model.bin").write_bytes(b"x")
    (binonly / "tokenizer.model").write_bytes(b"x")
    yield binonly
    bad = folder(tmp_path / "bad", {"model_type": "bert", "architectures": ["BertModel"]})
    raw_header_file(bad / "model.safetensors", b'{"a": {"dtype": "F99"}}', 0)
    yield bad
    ttm = folder(tmp_path / "ttm", {"model_type": "tinytimemixer"}, tokenizer=False)
    real_safetensors(ttm / "model.safetensors")
    write_json(ttm / "tsfm_config.json", TSFM_CONFIG_TEMPLATE)
    yield ttm


def test_reports_validate_against_the_published_schema(tmp_path):
    validator = jsonschema.Draft202012Validator(SCHEMA) if "2020-12" in SCHEMA.get("$schema", "") \
        else jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    n = 0
    for path in _cases(tmp_path):
        for users in (None, 500):
            errors = sorted(validator.iter_errors(run(path, users=users)), key=str)
            assert not errors, (path.name, [e.message for e in errors[:3]])
            n += 1
    assert n == 10
