import sys
from pathlib import Path

import pytest
from actors import alice, bob  # noqa: F401  (pytest fixtures: the owner and a stranger)

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
