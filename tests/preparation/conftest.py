import sys
from pathlib import Path

import pytest
from actors import alice, bob  # noqa: F401  (pytest fixtures: the owner and a stranger)
from worker_support import session_s3  # noqa: F401  (a pytest fixture: moto for the session)

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def torch():
    """torch is slow to import: once per session."""
    return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def spm_model(tmp_path_factory):
    pytest.importorskip("sentencepiece")
    from prep_builders import train_sentencepiece

    return train_sentencepiece(tmp_path_factory.mktemp("spm"))


@pytest.fixture(scope="session")
def bin_llama(torch, spm_model, tmp_path_factory):
    """(folder, state dict): a tiny llama saved as pytorch_model.bin with a
    sentencepiece tokenizer.model and tied embeddings."""
    from prep_builders import make_bin_llama

    folder = tmp_path_factory.mktemp("models") / "llama"
    return folder, make_bin_llama(torch, folder, tokenizer_model=spm_model)


@pytest.fixture(scope="session")
def sharded_llama(torch, tmp_path_factory):
    from prep_builders import make_sharded_bin

    folder = tmp_path_factory.mktemp("models") / "sharded"
    return folder, make_sharded_bin(torch, folder)


@pytest.fixture
def isolated(settings, tmp_path):
    """Media, work folders and storage of this test alone (the files use it for every test)."""
    settings.MEDIA_ROOT = tmp_path / "media"  # not created yet: Prepare's disk check measures its parent's disk
    settings.VAR_DIR = tmp_path / "var"
    settings.CFM_S3_BUCKET = ""


@pytest.fixture
def ttm_reg(alice, tmp_path):  # noqa: F811  (alice: the fixture imported above)
    """A tinytimemixer archive without tsfm_config.json: not deployable until Prepare adds it."""
    from prep_builders import archive_registration, make_ttm

    return archive_registration(alice, make_ttm(tmp_path / "ttm"), tmp_path)


@pytest.fixture
def s3_server(session_s3):  # noqa: F811  (the fixture imported above)
    """moto's S3 server, the session's (tests/worker_support.py)."""
    return session_s3
