"""Every rule of the platform's planning guide (2025-07-03) as data.

Changing a rule means changing a row here (and bumping RULES_VERSION's
revision), never adding an `if` in the engine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = [
    "RULES_VERSION", "GUIDE_DATE", "SPEC_TGI", "SPEC_VLLM", "SPEC_TSFM", "SOFTWARE_SPECS",
    "Architecture", "ARCHITECTURES", "architecture_for", "normalize_model_type", "vllm_architectures",
    "Configuration", "CONFIGURATIONS", "GENERAL_CONFIGURATIONS", "TIME_SERIES_CONFIGURATIONS",
    "configuration", "TS_SIZING_ROWS", "TsSizingRow", "PLANS", "PLANS_ALLOWED_TO_DEPLOY",
    "DEFAULT_LIMIT_UNITS", "UNIT_COSTS", "PREPARATION_STEPS", "CHECK_IDS",
    "DTYPE_BITS", "DTYPES_PASS", "DTYPES_WARN", "FLOAT_DOWNCAST_DTYPES", "PACKED_QUANT_METHODS",
    "TSFM_HANDLERS", "TSFM_REQUIRED_MODEL_NAMES", "TSFM_LENGTHS", "DEPLOYMENT_PARAMETERS", "DeploymentParameter",
    "SERVING_NAME_PATTERN", "SERVING_NAME_MAX", "LIMITATIONS", "SLOW_TOKENIZER_FILES",
    "PYTORCH_WEIGHT_SUFFIXES", "UNCONVERTIBLE_WEIGHT_SUFFIXES", "NON_WEIGHT_PICKLES",
    "ROPE_FIX", "DEFAULT_TIED_EMBEDDINGS", "UNGATED_MLP", "LEARNED_POSITIONS", "UNCERTIFIED_CONFIGURATIONS",
    "ESTIMATED_MODEL_TYPES",
]

def gettext_noop(s: str) -> str:
    """Marks a label for Django's makemessages; the catalog itself never imports Django."""
    return s


GUIDE_DATE = "2025-07-03"
#: The guide's date and cfm's revision of this data: bump the revision when
#: a row changes so that stored reports can be re-checked.
RULES_VERSION = f"{GUIDE_DATE}.1"

SPEC_TGI = "watsonx-cfm-caikit-1.0"
SPEC_VLLM = "watsonx-cfm-caikit-1.1"
SPEC_TSFM = "watsonx-tsfm-runtime-1.0"
#: spec name -> (short label, runtime). Order = preference, best first.
SOFTWARE_SPECS: dict[str, tuple[str, str]] = {
    SPEC_VLLM: ("1.1", "vLLM"),
    SPEC_TGI: ("1.0", "TGI"),
    SPEC_TSFM: ("tsfm-runtime-1.0", gettext_noop("time-series runtime")),
}

_S, _M, _L, _XL = "small", "medium", "large", "extra_large"


@dataclass(frozen=True)
class Architecture:
    model_type: str
    label: str
    examples: tuple[str, ...]
    #: certified quantization methods: the table's column plus the methods
    #: its example models use (the decision in platform-rules section 3).
    quantization: tuple[str, ...]
    tensor_parallel: bool | None
    configurations: tuple[str, ...]
    software_specs: tuple[str, ...]
    family: str = "general"
    #: quantization as the guide's column lists it (for the catalog page).
    listed_quantization: tuple[str, ...] = ()


def _arch(model_type, examples, quant, tp, specs, *, label=None, listed=None, family="general", confs=None):
    if confs is None:
        confs = (_S, _M, _L) if tp else (_S,)
    return Architecture(
        model_type=model_type, label=label or model_type, examples=tuple(examples),
        quantization=tuple(quant), tensor_parallel=tp, configurations=tuple(confs),
        software_specs=tuple(specs), family=family,
        listed_quantization=tuple(listed if listed is not None else quant),
    )


_BOTH = (SPEC_TGI, SPEC_VLLM)
_TGI = (SPEC_TGI,)
_VLLM = (SPEC_VLLM,)

#: Section 3 of the rules, row by row. codegen, mt5 and t5 list only 1.0:
#: that is the rule "1.1 cannot serve codegen/mt5/t5".
ARCHITECTURES: tuple[Architecture, ...] = (
    _arch("bloom", ["bigscience/bloom-3b", "bigscience/bloom-560m"], [], True, _BOTH),
    _arch("codegen", ["Salesforce/codegen-350M-mono", "Salesforce/codegen-16B-mono"], [], False, _TGI),
    _arch("exaone", ["lgai-exaone/exaone-3.0-7.8B-Instruct"], [], False, _VLLM),
    _arch("falcon", ["tiiuae/falcon-7b"], [], True, _BOTH),
    _arch("gemma", ["google/gemma-2b"], [], True, _VLLM),
    _arch("gemma2", ["google/gemma-2-9b"], [], True, _VLLM),
    _arch("gpt_bigcode", ["bigcode/starcoder", "bigcode/gpt_bigcode-santacoder"], ["gptq"], True, _BOTH),
    _arch("gpt_neox", ["rinna/japanese-gpt-neox-small", "EleutherAI/pythia-12b", "databricks/dolly-v2-12b"],
          [], True, _BOTH, label="gpt-neox"),
    _arch("gptj", ["EleutherAI/gpt-j-6b"], [], False, _BOTH),
    _arch("gpt2", ["openai-community/gpt2-large"], [], False, _BOTH),
    _arch("granite", ["ibm-granite/granite-3.0-8b-instruct", "ibm-granite/granite-3b-code-instruct-2k",
                      "granite-8b-code-instruct", "granite-7b-lab"], [], False, _VLLM),
    _arch("jais", ["core42/jais-13b"], [], True, _VLLM),
    _arch("llama", ["DeepSeek-R1 distilled (llama)", "meta-llama/Meta-Llama-3-8B",
                    "meta-llama/Meta-Llama-3.1-8B-Instruct", "llama-2-13b-chat-hf",
                    "TheBloke/Llama-2-7B-Chat-AWQ", "ISTA-DASLab/Llama-2-7b-AQLM-2Bit-1x16-hf"],
          ["gptq", "awq", "aqlm"], True, _BOTH, listed=["gptq"]),
    _arch("mistral", ["mistralai/Mistral-7B-v0.3", "neuralmagic/OpenHermes-2.5-Mistral-7B-marlin"],
          ["marlin"], False, _BOTH, listed=[]),
    _arch("mixtral", ["TheBloke/Mixtral-8x7B-v0.1-GPTQ", "mistralai/Mixtral-8x7B-Instruct-v0.1"],
          ["gptq"], False, _VLLM),
    _arch("mpt", ["mosaicml/mpt-7b", "mosaicml/mpt-7b-storywriter", "mosaicml/mpt-30b"], [], False, _BOTH),
    _arch("mt5", ["google/mt5-small", "google/mt5-xl"], [], False, _TGI),
    _arch("nemotron", ["nvidia/Minitron-8B-Base"], [], True, _VLLM),
    _arch("olmo", ["allenai/OLMo-1B-hf", "allenai/OLMo-7B-hf"], [], True, _VLLM),
    _arch("persimmon", ["adept/persimmon-8b-base", "adept/persimmon-8b-chat"], [], True, _VLLM),
    _arch("phi", ["microsoft/phi-2", "microsoft/phi-1_5"], [], True, _VLLM),
    _arch("phi3", ["microsoft/Phi-3-mini-4k-instruct"], [], True, _VLLM),
    _arch("qwen", ["DeepSeek-R1 distilled (qwen)"], [], True, _VLLM),
    _arch("qwen2", ["Qwen/Qwen2-7B-Instruct-AWQ"], ["awq"], True, _VLLM),
    _arch("t5", ["google/flan-t5-large", "google/flan-t5-small"], [], True, _TGI),
    _arch("tinytimemixer", ["ibm-granite/granite-timeseries-ttm-r2"], [], None, (SPEC_TSFM,),
          family="time_series", confs=(_S, _M, _L, _XL), label="tinytimemixer (time series)"),
)
_BY_TYPE = {a.model_type: a for a in ARCHITECTURES}

#: An architecture that vLLM serves but the platform has not certified: the
#: vLLM spec only; sizing as for tensor-parallel rows (vLLM shards every
#: text-generation model it implements), tensor_parallel reported unknown.
UNCERTIFIED_CONFIGURATIONS = (_S, _M, _L)


def normalize_model_type(value: str) -> str:
    """The rules' name decision: lower-case, '-' becomes '_' (nothing more:
    transformers refuses " llama ", so cfm does too)."""
    return value.lower().replace("-", "_")


def architecture_for(model_type: str | None) -> Architecture | None:
    if not isinstance(model_type, str):
        return None
    return _BY_TYPE.get(normalize_model_type(model_type))


@cache
def vllm_architectures() -> frozenset[str]:
    return _names("vllm_architectures.txt")


@cache
def transformers_model_types() -> frozenset[str]:
    """The model types whose config transformers loads without remote code."""
    return _names("transformers_model_types.txt")


def _names(filename: str) -> frozenset[str]:
    text = resources.files(__package__).joinpath(filename).read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def config_is_loadable(config: dict) -> bool:
    """Whether the runtime can load this config.json at all: transformers
    knows its model_type, or the config brings its own code (auto_map with an
    AutoConfig; the trust_remote_code check says what that costs). The rules'
    decision lets an uncertified vLLM architecture through with a warning;
    a model_type nobody can load fails, whatever architecture it names."""
    model_type = config.get("model_type")
    if isinstance(model_type, str) and normalize_model_type(model_type) in transformers_model_types():
        return True
    auto_map = config.get("auto_map")
    return isinstance(auto_map, dict) and isinstance(auto_map.get("AutoConfig"), str)


__all__ += ["config_is_loadable", "transformers_model_types"]


# --- Section 4: sizing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Configuration:
    key: str
    label: str
    short: str
    #: inclusive upper bound in 16-bit-equivalent parameters (general family)
    max_parameters: int | None
    hardware_request: dict


#: Units a deployment reserves are UNIT_COSTS (below), the seed of the
#: administrators' table: not a field here, so that no page reads a stale copy.
CONFIGURATIONS: dict[str, Configuration] = {
    _S: Configuration(_S, gettext_noop("Small"), "S", 26_000_000_000, {"size": "gpu_s", "num_nodes": 1}),
    _M: Configuration(_M, gettext_noop("Medium"), "M", 53_000_000_000, {"size": "gpu_m", "num_nodes": 1}),
    _L: Configuration(_L, gettext_noop("Large"), "L", 106_000_000_000, {"size": "gpu_l", "num_nodes": 1}),
    _XL: Configuration(_XL, gettext_noop("Extra large"), "XL", None, {"name": "XL", "num_nodes": 1}),
}
GENERAL_CONFIGURATIONS = (_S, _M, _L)
TIME_SERIES_CONFIGURATIONS = (_S, _M, _L, _XL)
#: Time-series deployments ask for `hardware_spec: {"name": ..., "num_nodes": 1}`.
TS_HARDWARE_SPEC = {k: {"name": CONFIGURATIONS[k].short, "num_nodes": 1} for k in TIME_SERIES_CONFIGURATIONS}


def configuration(key: str) -> Configuration:
    return CONFIGURATIONS[key]


@dataclass(frozen=True)
class TsSizingRow:
    univariate_length: int
    series: int
    targets: int
    users: dict[str, int]


#: The guide's time-series table: concurrent users served per configuration
#: for a payload, univariate length or multivariate series x targets.
TS_SIZING_ROWS: tuple[TsSizingRow, ...] = tuple(
    TsSizingRow(length, s, t, dict(zip(TIME_SERIES_CONFIGURATIONS, users, strict=True)))
    for length, s, t, users in (
        (30, 15, 5, (14, 28, 56, 113)),
        (60, 15, 10, (14, 28, 56, 112)),
        (125, 15, 20, (13, 27, 54, 109)),
        (250, 15, 40, (13, 26, 53, 106)),
        (500, 15, 80, (10, 21, 42, 85)),
        (1000, 23, 100, (6, 12, 25, 50)),
    )
)

#: Smallest first: "larger" and "smaller" configurations compare by this order.
CONFIGURATION_ORDER = (_S, _M, _L, _XL)


def allowed_configurations(model_type: str | None, family: str) -> tuple[str, ...]:
    """The configurations a deployment may ask for: the architecture's row
    (Small only without tensor parallelism), every time-series size, or,
    for an uncertified vLLM architecture, the tensor-parallel sizes."""
    if family == "time_series":
        return TIME_SERIES_CONFIGURATIONS
    arch = architecture_for(model_type)
    if arch is not None:
        return arch.configurations
    return UNCERTIFIED_CONFIGURATIONS


def configuration_for_serving_bytes(serving_bytes: int, confs: tuple[str, ...]) -> str | None:
    """The smallest of `confs` whose bound holds these serving bytes (the
    memory-based sizing decision). Bytes are compared, not floor(bytes / 2):
    an odd serving size is half a parameter over an inclusive bound. Extra
    large has no bound: it is a time-series size only."""
    return next((c for c in CONFIGURATION_ORDER if c in confs
                 and (bound := CONFIGURATIONS[c].max_parameters) is not None and serving_bytes <= 2 * bound), None)


__all__ += ["CONFIGURATION_ORDER", "allowed_configurations", "configuration_for_serving_bytes"]

# --- The KV cache and the context (report-contract.md, "Memory and the verdict at a glance") ------------
#: The GPUs behind each configuration, 80 GB each, the 0.9 share and the runtime allowance are
#: CONFIGURATION_GPUS, GPU_MEMORY_BYTES, GPU_USABLE_BYTES and RUNTIME_ALLOWANCE_BYTES (below).
#: The KV cache holds keys and values (2) of every layer, each value 16-bit (2 bytes).
KV_CACHE_TENSORS = 2
KV_CACHE_VALUE_BYTES = 2
#: config.json keys, first found wins (the contract's lists, in its order).
CONTEXT_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "max_sequence_length",
                       "seq_length", "model_max_length")
KV_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
#: encoder-decoder models cache the decoder's layers only
KV_DECODER_LAYER_KEYS = ("num_decoder_layers", "num_layers")
ENCODER_DECODER_MODEL_TYPES = frozenset({"t5", "mt5"})
KV_HEAD_KEYS = ("num_key_value_heads", "num_kv_heads", "n_head_kv")
ATTENTION_HEAD_KEYS = ("num_attention_heads", "n_head", "n_heads", "num_heads")
HEAD_SIZE_KEYS = ("head_dim", "d_kv")
HIDDEN_SIZE_KEYS = ("hidden_size", "n_embd", "d_model")
#: The platform's default max_sequence_length, and the most the defaults ask for: a deployment
#: that leaves it out gets min(this, context_length) (platform-rules, deployment parameters).
DEFAULT_SEQUENCE_LENGTH = 2048
__all__ += ["KV_CACHE_TENSORS", "KV_CACHE_VALUE_BYTES", "CONTEXT_LENGTH_KEYS", "KV_LAYER_KEYS",
            "KV_DECODER_LAYER_KEYS", "ENCODER_DECODER_MODEL_TYPES", "KV_HEAD_KEYS", "ATTENTION_HEAD_KEYS",
            "HEAD_SIZE_KEYS", "HIDDEN_SIZE_KEYS", "DEFAULT_SEQUENCE_LENGTH"]


def next_configuration(key: str | None, allowed: tuple[str, ...]) -> str | None:
    """The next configuration up from `key` among `allowed` (the rules' advice when one
    fails), or None at the top or without one."""
    if key not in CONFIGURATION_ORDER:
        return None
    later = CONFIGURATION_ORDER[CONFIGURATION_ORDER.index(key) + 1:]
    return next((c for c in later if c in allowed), None)


__all__ += ["next_configuration"]

# --- Section 5: accounts and limits ------------------------------------------------------------------
#: plan -> label (the accounts' plan choices)
PLANS = {"lite": gettext_noop("Lite"), "essentials": gettext_noop("Essentials"), "standard": gettext_noop("Standard")}
PLANS_ALLOWED_TO_DEPLOY = ("standard",)
DEFAULT_PLAN = "standard"
#: The seed of the default limit: the CFM_DEFAULT_LIMIT_UNITS setting's
#: default, then the administrators' QuotaSettings row (the live value).
DEFAULT_LIMIT_UNITS = 4
UNIT_COSTS = {_S: 1, _M: 2, _L: 4, _XL: 8}

# --- Weights, dtypes, quantization ---------------------------------------------------------------------
#: safetensors dtype -> bits per element (F4 and F6 pack below a byte).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "U16": 16, "I16": 16, "U32": 32, "I32": 32, "U64": 64, "I64": 64,
    "F16": 16, "BF16": 16, "F32": 32, "F64": 64, "C64": 64,
    "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "F8_E4M3FN": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
DTYPES_PASS = frozenset({"F16", "BF16", "F32", "BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64"})
DTYPES_WARN = frozenset(k for k in DTYPE_BITS if k.startswith("F8_"))
#: Floats the runtime casts down to 16 bits at load: 2 serving bytes a value.
FLOAT_DOWNCAST_DTYPES = frozenset({"F32", "F64"})
#: Methods whose int32 `qweight` packs 32/bits values; companions are not parameters.
PACKED_QUANT_METHODS = {
    "gptq": {"packed": (".qweight",), "companions": (".qzeros", ".scales", ".g_idx")},
    "awq": {"packed": (".qweight",), "companions": (".qzeros", ".scales")},
    "marlin": {"packed": (".qweight", ".B"), "companions": (".qzeros", ".scales", ".g_idx", ".s", ".workspace")},
    "gptq_marlin": {"packed": (".qweight",), "companions": (".qzeros", ".scales", ".g_idx")},
    "awq_marlin": {"packed": (".qweight",), "companions": (".qzeros", ".scales")},
}

PYTORCH_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth")
#: Pickles that trainers leave beside weights; they are not weights.
NON_WEIGHT_PICKLES = ("training_args", "optimizer", "scheduler", "rng_state", "trainer_state")
UNCONVERTIBLE_WEIGHT_SUFFIXES = (".gguf", ".ggml", ".h5", ".msgpack", ".onnx", ".ckpt", ".npz", ".tflite", ".pb")
SLOW_TOKENIZER_FILES = (
    ("tokenizer.model",), ("spiece.model",), ("sentencepiece.bpe.model",), ("vocab.json", "merges.txt"),
    ("vocab.txt",),
)

#: Decoder families whose lm_head is tied to the embeddings unless config says otherwise.
DEFAULT_TIED_EMBEDDINGS = frozenset({"gemma", "gemma2", "gpt2", "gpt_bigcode", "bloom", "falcon", "mpt", "olmo",
                                     "t5", "jais"})
#: Decoder families whose MLP has two matrices (up, down); the others are gated (gate, up, down).
UNGATED_MLP = frozenset({"gpt2", "gpt_neox", "gptj", "falcon", "bloom", "mpt", "phi", "codegen", "gpt_bigcode",
                         "starcoder2", "nemotron", "persimmon", "opt", "gpt_neo"})
#: Families with learned absolute position embeddings (n_positions x hidden).
LEARNED_POSITIONS = frozenset({"gpt2", "gpt_bigcode", "opt", "gpt_neo"})
#: Model types whose parameter count can be estimated from config.json alone (for weights
#: without safetensors headers): decoder-only transformers with a plain or gated MLP, and
#: T5/mT5. Any other (an encoder such as BERT, a vision or speech model) gets no estimate
#: rather than a wrong one: a .bin-only BERT counted as a gated decoder came out 65% too high.
ESTIMATED_MODEL_TYPES = frozenset({
    "bloom", "codegen", "exaone", "falcon", "gemma", "gemma2", "gpt_bigcode", "gpt_neox", "gptj", "gpt2",
    "granite", "jais", "llama", "mistral", "mixtral", "mpt", "nemotron", "olmo", "persimmon", "phi", "phi3",
    "qwen", "qwen2", "starcoder2", "opt", "gpt_neo", "t5", "mt5",
})

# --- Section 6: preparation, tsfm_config, deployment ---------------------------------------------------
PREPARATION_STEPS = (
    "convert_weights_to_safetensors", "generate_tokenizer_json", "add_tsfm_config",
    "fix_safetensors_metadata", "fix_rope_scaling",
)
CHECK_IDS = (
    "config_present", "config_valid", "architecture", "trust_remote_code", "weights_format",
    "safetensors_header", "safetensors_index", "safetensors_metadata", "dtypes", "tokenizer",
    "quantization", "tsfm_config", "size", "software_spec", "known_issues",
    # added after the contract's fifteen (report-contract.md, "Memory and the verdict at a glance")
    "context",
)

#: (module key, class key) -> allowed (module, class) pairs. Compared as
#: strings, never imported (a 2026 advisory: code execution via crafted names).
TSFM_HANDLERS = {
    ("service_handler_module_path", "service_handler_class_name"):
        {("tsfminference.tsfm_service_handler", "TinyTimeMixerForecastingHandler")},
    ("inference_handler_module_path", "inference_handler_class_name"):
        {("tsfminference.tsfm_inference_handler", "TinyTimeMixerForecastingInferenceHandler")},
    ("tuning_handler_module_path", "tuning_handler_class_name"):
        {("tsfmfinetuning.tsfm_tuning_handler", "TinyTimeMixerForecastingTuningHandler")},
}
TSFM_REQUIRED_MODEL_NAMES = {
    "model_type": {"tinytimemixer"},
    "module_path": {"tsfm_public"},
    "model_config_name": {"TinyTimeMixerConfig"},
    "model_class_name": {"TinyTimeMixerForPrediction"},
}
#: keys whose value may also be a module INSIDE one of the allowed packages: `tsfm_public.`
#: followed by a dotted path of identifiers, as granite-tsfm's TSFMConfig writes it
#: (`tsfm_public.models.tinytimemixer.modeling_tinytimemixer`; decision in the rules).
TSFM_PACKAGE_KEYS = frozenset({"module_path"})
#: tsfm_config.json's lengths and the config.json keys they come from (a
#: maximum that differs is a warning; a minimum context over the model's is too)
TSFM_LENGTHS = {
    "maximum_context_length": "context_length",
    "maximum_prediction_length": "prediction_length",
}
TSFM_CONFIG_TEMPLATE = {
    "service_handler_module_path": "tsfminference.tsfm_service_handler",
    "service_handler_class_name": "TinyTimeMixerForecastingHandler",
    "maximum_prediction_length": 96,
    "minimum_context_length": 512,
    "maximum_context_length": 512,
    "module_path": "tsfm_public",
    "model_type": "tinytimemixer",
    "model_config_name": "TinyTimeMixerConfig",
    "model_class_name": "TinyTimeMixerForPrediction",
}
__all__ += ["TSFM_CONFIG_TEMPLATE", "TS_HARDWARE_SPEC", "TSFM_PACKAGE_KEYS"]


#: The guide gives only lower bounds. Decision: no integer parameter may
#: exceed what a signed 32-bit integer holds; no runtime serves a batch, a
#: queue or a sequence anywhere near it, and a larger number is a typo that
#: would otherwise travel into the platform request.
PARAMETER_MAXIMUM = 2**31 - 1
__all__ += ["PARAMETER_MAXIMUM"]


@dataclass(frozen=True)
class DeploymentParameter:
    name: str
    default: object
    #: inclusive bounds of an integer parameter (both set for every one)
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    at_least: str | None = None  # another parameter this one must be >= to
    unused_with: tuple[str, ...] = ()  # specs that ignore it


DEPLOYMENT_PARAMETERS: tuple[DeploymentParameter, ...] = (
    DeploymentParameter("dtype", "float16", choices=("float16", "bfloat16")),
    DeploymentParameter("max_batch_size", 256, minimum=1, maximum=PARAMETER_MAXIMUM),
    DeploymentParameter("max_concurrent_requests", 1024, minimum=1, maximum=PARAMETER_MAXIMUM,
                        at_least="max_batch_size", unused_with=(SPEC_VLLM,)),
    DeploymentParameter("max_new_tokens", 2048, minimum=20, maximum=PARAMETER_MAXIMUM),
    DeploymentParameter("max_sequence_length", 2048, minimum=20, maximum=PARAMETER_MAXIMUM,
                        at_least="max_new_tokens"),
)
SERVING_NAME_PATTERN = r"^[a-z0-9_]{1,36}$"
SERVING_NAME_MAX = 36

#: Llama 3.1 rope_scaling: runtimes with transformers < 4.43 reject it.
ROPE_FIX = {"min_transformers": "4.43", "replacement_type": "dynamic", "rope_type": "llama3"}


def llama3_rope_scaling(config: dict) -> tuple[bool, int | float | None]:
    """Whether config.json sets the Llama 3.1 rope_scaling that older
    runtimes reject, and its factor when it is a usable number (the edit
    keeps the model's own factor; with none there is nothing to keep).
    NaN/Infinity (Python's json accepts them) are not usable: they would make
    the report invalid JSON. Read by the engine and by Prepare alike."""
    rope = config.get("rope_scaling")
    if not isinstance(rope, dict) or ROPE_FIX["rope_type"] not in (rope.get("rope_type"), rope.get("type")):
        return False, None
    factor = rope.get("factor")
    ok = (isinstance(factor, float) and math.isfinite(factor)) or (
        isinstance(factor, int) and not isinstance(factor, bool) and abs(factor) < 10**9)
    return True, factor if ok else None


__all__ += ["llama3_rope_scaling"]
#: Decision (the guide names no runtime versions): which software specifications run
#: transformers 4.43 or newer, so a Llama 3.1 rope_scaling loads as it is. The vLLM spec
#: (1.1) serves Llama 3.1, and vLLM's releases that do need transformers >= 4.43; the
#: TGI spec (1.0) is the older runtime and is read as predating it. Change a row here
#: when the platform publishes its runtimes' versions.
SPECS_TRANSFORMERS_4_43: dict[str, bool] = {SPEC_VLLM: True, SPEC_TGI: False, SPEC_TSFM: False}
__all__ += ["SPECS_TRANSFORMERS_4_43"]

# --- Section 7 -----------------------------------------------------------------------------------------
LIMITATIONS = ("no_tuning", "no_prompt_governance")

# --- Hardware behind the configurations (platform-rules section 4, a decision) -------------------------
#: Derived, not stated by the platform: the guide sizes by GPU memory with
#: 1 GPU = 80 GB, and its 26B/53B/106B bands match 1, 2 and 4 of them.
CONFIGURATION_GPUS = {_S: 1, _M: 2, _L: 4}
GPU_MEMORY_BYTES = 80_000_000_000
#: vLLM's default share of a GPU's memory (0.9 of 80 GB)
GPU_USABLE_BYTES = 72_000_000_000
#: what the runtime itself holds per GPU beside the weights and the KV cache
RUNTIME_ALLOWANCE_BYTES = 2 * 1024**3
#: bits a quantized model's weights could be stored in, for the page's "what if" estimate
QUANTIZATION_ESTIMATE_BITS = (8, 4)
__all__ += ["DEFAULT_PLAN", "gettext_noop"]
__all__ += ["CONFIGURATION_GPUS", "GPU_MEMORY_BYTES", "GPU_USABLE_BYTES", "RUNTIME_ALLOWANCE_BYTES",
            "QUANTIZATION_ESTIMATE_BITS"]

# --- The verdict (report-contract "Memory and the verdict at a glance") ---------------------------------
#: Weakest to strongest: when two apply, the later wins.
VERDICTS = ("ready", "prepare", "uncertified", "refused")
__all__ += ["VERDICTS"]
