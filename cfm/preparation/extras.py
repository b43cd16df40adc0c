"""Which optional libraries a preparation needs, and which are missing.

torch, transformers, sentencepiece and friends are the `cfm[convert]`
extra: a server that only inspects does not carry them. Checked with
find_spec, never imported here (importing torch takes seconds).
"""
from __future__ import annotations

from importlib.util import find_spec

INSTALL_HINT = "pip install 'cfm[convert]'"

#: step -> (import name, package name) it needs
_NEEDS = {
    "convert_weights_to_safetensors": (("torch", "torch"),),
    "generate_tokenizer_json": (("transformers", "transformers"), ("tokenizers", "tokenizers"),
                                ("sentencepiece", "sentencepiece"), ("google.protobuf", "protobuf")),
}


def _present(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_packages(steps: list[str] | tuple[str, ...], *, s3: bool = False) -> list[str]:
    missing: list[str] = []
    needs = [pair for step in steps for pair in _NEEDS.get(step, ())]
    if s3:
        needs.append(("boto3", "boto3"))
    for module, package in needs:
        if package not in missing and not _present(module):
            missing.append(package)
    return missing
