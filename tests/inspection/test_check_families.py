"""The engine's three phases (facts.py, derived.py, checks/): the facts are
read once and frozen, and each check is a function of the facts and the
derived values alone: run in any order, the checks give the same report."""
from __future__ import annotations

import dataclasses
import random

import pytest
from modelfactory import LLAMA3_8B, make_model, write_json

from cfm import catalog
from cfm.inspection import InspectLimits
from cfm.inspection.checks import CHECKS
from cfm.inspection.derived import derive
from cfm.inspection.engine import inspect_source
from cfm.inspection.facts import gather
from cfm.inspection.sources import open_source


def _models(tmp_path):
    good = make_model(tmp_path / "good", LLAMA3_8B, shards=3)
    bare = tmp_path / "bare"
    bare.mkdir()
    write_json(bare / "config.json", {"model_type": "not-a-model"})
    (bare / "pytorch_model.bin").write_bytes(b"not really")
    empty = tmp_path / "empty"
    empty.mkdir()
    return [good, bare, empty]


def _facts(folder):
    with open_source(str(folder), limits=InspectLimits()) as source:
        return gather(source, InspectLimits(), lambda *a: None)


def test_one_check_function_per_catalog_id_in_the_catalogs_order():
    assert tuple(CHECKS) == catalog.CHECK_IDS


def test_checks_run_in_any_order_give_the_same_outcomes(tmp_path):
    for folder in _models(tmp_path):
        facts = _facts(folder)
        model = derive(facts, concurrent_users=None, payload=None)
        forward = {cid: CHECKS[cid](facts, model) for cid in catalog.CHECK_IDS}
        shuffled = list(catalog.CHECK_IDS)
        random.Random(8).shuffle(shuffled)
        for cid in reversed(shuffled):
            assert CHECKS[cid](facts, model) == forward[cid], (folder.name, cid)


def test_facts_are_frozen_and_hold_what_was_read(tmp_path):
    facts = _facts(make_model(tmp_path / "m", LLAMA3_8B, shards=2))
    assert facts.config is not None and facts.config["model_type"] == "llama"
    assert [s.path for s in facts.shards] == sorted(facts.safetensors) and all(s.info for s in facts.shards)
    assert facts.bytes_read > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        facts.config = None  # type: ignore[misc]


def test_the_checks_read_nothing_after_the_facts(tmp_path):
    """Every byte is read while gathering: the report's bytes_read is the
    source's count when the facts were complete."""
    folder = make_model(tmp_path / "m", LLAMA3_8B, shards=2)
    with open_source(str(folder), limits=InspectLimits()) as source:
        report = inspect_source(source)
        assert report.to_dict()["files"]["bytes_read"] == source.bytes_read
    assert _facts(folder).bytes_read == source.bytes_read
