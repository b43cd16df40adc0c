"""The report page's dtype chart shows bytes per dtype (what a deployment
holds), with the number of tensors beside them. The bytes come from the
report's `dtype_bytes`, a field beyond the contract (which lets fields be
added): `dtypes` still counts tensors. Three users on the page: the owner,
a member of another account (404) and an anonymous visitor (sent to log in)."""
from __future__ import annotations

import re

import pytest
from actors import member
from django.urls import reverse
from django.utils import timezone
from modelfactory import DTYPE_BYTES, llama_config, llama_tensors, make_model

from cfm.inspection import inspect
from cfm.registry.models import Registration, SourceKind, Status
from cfm.registry.presenters import dtype_bars
from cfm.registry.texts import filesize

CFG = llama_config(hidden=1024, layers=4, heads=8, kv_heads=2, intermediate=4096, vocab=32000)


def _mixed_tensors() -> dict[str, tuple[str, list[int]]]:
    """BF16 weights, nine small F32 norms and one larger I64 buffer: the order by bytes is not the order
    by tensors."""
    tensors = llama_tensors(CFG)
    for name, (_, shape) in list(tensors.items()):
        if name.endswith("norm.weight"):
            tensors[name] = ("F32", shape)
    tensors["model.position_ids"] = ("I64", [1, 32768])
    return tensors


def _bytes_by_dtype(tensors) -> dict[str, int]:
    out: dict[str, int] = {}
    for dtype, shape in tensors.values():
        n = DTYPE_BYTES[dtype]
        for d in shape:
            n *= d
        out[dtype] = out.get(dtype, 0) + n
    return out


@pytest.fixture
def mixed_report(tmp_path) -> dict:
    return inspect(str(make_model(tmp_path / "mixed", CFG, _mixed_tensors(), shards=3))).to_dict()


def test_the_report_holds_the_bytes_of_each_dtype_summed_over_the_shards(mixed_report):
    expected = _bytes_by_dtype(_mixed_tensors())
    assert mixed_report["dtype_bytes"] == expected
    assert sum(mixed_report["dtype_bytes"].values()) == mixed_report["weight_bytes"]
    # The contract's field is unchanged: tensors per dtype.
    assert mixed_report["dtypes"] == {"BF16": 4 * 7 + 2, "F32": 4 * 2 + 1, "I64": 1}


def test_a_model_without_safetensors_reports_no_bytes_per_dtype(tmp_path):
    folder = make_model(tmp_path / "bin", CFG, {})
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"x")
    report = inspect(str(folder)).to_dict()
    assert report["dtypes"] == {} and report["dtype_bytes"] == {} and dtype_bars(report) == []


def test_the_chart_sizes_its_bars_by_bytes_not_by_tensor_count(mixed_report):
    bars = dtype_bars(mixed_report)
    expected = _bytes_by_dtype(_mixed_tensors())
    assert [b["dtype"] for b in bars] == ["BF16", "I64", "F32"]  # F32 has more tensors than I64, and fewer bytes
    bf16, i64, f32 = bars
    assert (bf16["bytes"], bf16["count"], bf16["width"]) == (expected["BF16"], 30, 100)
    assert f32["bytes"] == expected["F32"] and f32["count"] == 9 and f32["width"] == 1  # tiny, but visible
    assert f32["tiny"] and f32["share"] == 0 and bf16["share"] == 100
    # F32 is cast to 16 bits by the runtime: half the bytes as served; BF16 and I64 are served as stored.
    assert f32["served"] == expected["F32"] // 2 and bf16["served"] is None and i64["served"] is None


def test_an_older_report_with_one_dtype_takes_its_bytes_from_the_weight_bytes():
    bars = dtype_bars({"dtypes": {"BF16": 291}, "weight_bytes": 16_060_522_496})
    assert [(b["dtype"], b["bytes"], b["count"], b["width"]) for b in bars] == [("BF16", 16_060_522_496, 291, 100)]


@pytest.mark.parametrize("report", [
    {"dtypes": {"BF16": 200, "F32": 50}, "weight_bytes": 1000},  # older report: the split is unknown
    {"dtypes": {"BF16": 200, "F32": 50}, "dtype_bytes": {"BF16": 10}},  # does not cover every dtype
    {"dtypes": {"BF16": 200, "F32": 50}, "dtype_bytes": {"BF16": "10", "F32": -1}},
    {"dtypes": {"BF16": 200, "F32": 50}, "dtype_bytes": [1, 2]},
])
def test_a_report_without_usable_bytes_per_dtype_falls_back_to_counting_tensors(report):
    bars = dtype_bars(report)
    assert [(b["dtype"], b["bytes"], b["count"], b["width"]) for b in bars] == [("BF16", None, 200, 100),
                                                                                ("F32", None, 50, 25)]


@pytest.fixture
def owner(db):
    return member("alice")


@pytest.fixture
def stranger(db):
    return member("bob")


def _done(owner, report) -> Registration:
    return Registration.objects.create(account=owner[1], created_by=owner[0], source_kind=SourceKind.FOLDER,
                                       source="mixed", status=Status.DONE, report=report, finished_at=timezone.now())


def _chart(html: str) -> str:
    match = re.search(r'<section class="card" aria-labelledby="dtypes-title">.*?</section>', html, re.S)
    assert match
    return match.group(0)


def test_the_report_page_shows_bytes_per_dtype_with_the_tensor_count(client, owner, mixed_report):
    reg = _done(owner, mixed_report)
    expected = _bytes_by_dtype(_mixed_tensors())
    client.force_login(owner[0])
    for name in ("registration", "registration_live"):
        chart = _chart(client.get(reverse(name, args=[reg.pk])).content.decode())
        rows = re.findall(r'data-dtype="(\w+)" data-bytes="(\d+)" data-tensors="(\d+)"', chart)
        assert rows == [("BF16", str(expected["BF16"]), "30"), ("I64", str(expected["I64"]), "1"),
                        ("F32", str(expected["F32"]), "9")]
        assert f'<span class="num">{filesize(expected["BF16"])}</span>' in chart
        assert "30 tensors" in chart and "1 tensor " in chart and "&lt;1%" in chart
        assert f"served as 16-bit: {filesize(expected['F32'] // 2)}" in chart
        assert f'aria-label="Bytes per dtype: BF16 {filesize(expected["BF16"])} (30 tensors), I64' in chart
        assert "Bytes of tensor data per dtype as stored" in chart and "Number of tensors per dtype" not in chart
        assert 'class="bar-chart" data-measure="bytes"' in chart


def test_the_report_page_of_an_older_report_still_counts_tensors(client, owner):
    reg = _done(owner, {"deployable": True, "dtypes": {"BF16": 200, "F32": 50}, "checks": []})
    client.force_login(owner[0])
    chart = _chart(client.get(reverse("registration", args=[reg.pk])).content.decode())
    assert "Number of tensors per dtype: BF16 200, F32 50" in chart and "re-run the inspection" in chart
    assert "data-bytes" not in chart and 'data-measure="bytes"' not in chart


def test_a_stranger_and_an_anonymous_visitor_do_not_see_the_chart(client, owner, stranger, mixed_report):
    reg = _done(owner, mixed_report)
    for name in ("registration", "registration_live", "registration_report_json"):
        r = client.get(reverse(name, args=[reg.pk]))
        assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
    client.force_login(stranger[0])
    for name in ("registration", "registration_live", "registration_report_json"):
        r = client.get(reverse(name, args=[reg.pk]))
        assert r.status_code == 404 and b"data-bytes" not in r.content and b"dtype_bytes" not in r.content


def test_the_downloaded_report_keeps_the_contract_and_adds_the_bytes(client, owner, mixed_report):
    reg = _done(owner, mixed_report)
    client.force_login(owner[0])
    data = client.get(reverse("registration_report_json", args=[reg.pk])).json()
    assert data["dtypes"] == {"BF16": 30, "F32": 9, "I64": 1} and data["dtype_bytes"] == mixed_report["dtype_bytes"]
