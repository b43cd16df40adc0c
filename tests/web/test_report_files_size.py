"""The report page of a `.bin`-only model: its weights' size from the file
list (the report's `files_bytes`), said as such, with its parameters marked
as estimated; in English and Japanese. A model whose headers give the size
shows that one only."""
from __future__ import annotations

import pytest
from actors import member
from django.urls import reverse
from modelfactory import LLAMA_TOKENIZER, llama_config, make_model, write_json

from cfm.inspection import inspect
from cfm.registry.models import Registration, SourceKind, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    user, account = member("mio")
    client.force_login(user)
    return user, account


def _bin_folder(path):
    path.mkdir()
    write_json(path / "config.json", llama_config())
    write_json(path / "tokenizer.json", LLAMA_TOKENIZER)
    return path


def _reg(owner, report) -> Registration:
    user, account = owner
    return Registration.objects.create(account=account, created_by=user, source_kind=SourceKind.HUB,
                                       source="org/model", status=Status.DONE, report=report)


def test_a_bin_only_model_shows_its_listed_size(client, owner, tmp_path):
    model = _bin_folder(tmp_path / "bin")
    for i, size in enumerate((9_000_000_000, 7_100_000_000), 1):
        with open(model / f"pytorch_model-0000{i}-of-00002.bin", "wb") as fh:
            fh.truncate(size)
    report = inspect(str(model)).to_dict()
    reg = _reg(owner, report)
    html = client.get(reverse("registration", args=[reg.pk])).content.decode()
    assert "Weights: 16.1 GB of .bin files (size from the file list; parameters estimated)." in html
    assert '<span id="weights-listed">16.1 GB</span>' in html
    assert "never the 16.1 GB of weights" in html
    ja = client.get(reverse("registration", args=[reg.pk]), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "重み: .bin ファイル 16.1 GB（サイズはファイル一覧から。パラメーター数は推定）。" in ja


def test_headers_give_the_size_and_no_listed_size_is_shown(client, owner, tmp_path):
    model = make_model(tmp_path / "st", llama_config())
    reg = _reg(owner, inspect(str(model)).to_dict())
    html = client.get(reverse("registration", args=[reg.pk])).content.decode()
    assert 'id="files-summary"' not in html and 'id="weights-listed"' not in html


def test_a_report_written_before_the_field_shows_a_dash(client, owner, tmp_path):
    model = _bin_folder(tmp_path / "old")
    (model / "pytorch_model.bin").write_bytes(b"x" * 100)
    report = inspect(str(model)).to_dict()
    report.pop("files_bytes"), report.pop("files_bytes_by_format")
    html = client.get(reverse("registration", args=[_reg(owner, report).pk])).content.decode()
    assert 'id="files-summary"' not in html and 'id="weights-listed"' not in html
