"""Check messages as templates with parameters.

The JSON report carries the English text (the contract) and also the key
and parameters, so a page renders the same message in the reader's
language. `gettext_noop` marks the strings for Django's makemessages; the
engine itself never imports Django.
"""
from __future__ import annotations


def gettext_noop(s: str) -> str:
    return s


# key -> (message, remedy or None). Keys are "<check>.<outcome>".
MESSAGES: dict[str, tuple[str, str | None]] = {
    # config_present
    "config_present.pass": (gettext_noop("config.json is at the root of the model folder."), None),
    "config_present.not_file": (
        gettext_noop("{file} at the root of the model folder is a {kind}, not a regular file."),
        gettext_noop("Replace it with the config.json file that transformers' save_pretrained writes."),
    ),
    "config_present.fail": (
        gettext_noop("config.json is missing from the root of the model folder."),
        gettext_noop("Add the config.json that transformers' save_pretrained writes: without it no model asset can "
                     "be created."),
    ),
    # config_valid
    "config_valid.pass": (gettext_noop('config.json is a JSON object with model_type "{model_type}".'), None),
    "config_valid.skip": (gettext_noop("config.json is missing, so it cannot be validated."), None),
    "config_valid.not_json": (
        gettext_noop("config.json is not valid JSON ({detail})."),
        gettext_noop("Fix config.json or re-save it with save_pretrained."),
    ),
    "config_valid.not_utf8": (
        gettext_noop("config.json is not UTF-8 text ({detail})."),
        gettext_noop("Fix config.json or re-save it with save_pretrained."),
    ),
    "config_valid.too_large": (
        gettext_noop("config.json is {size} bytes, over the cap of {cap} bytes for a config file."),
        gettext_noop("A real config.json is a few kilobytes: replace it with the one save_pretrained writes (the cap "
                     "is the CFM_MAX_CONFIG_BYTES setting)."),
    ),
    "config_valid.too_deep": (
        gettext_noop("config.json is nested more than {cap} levels deep."),
        gettext_noop("Replace config.json with the one save_pretrained writes."),
    ),
    "config_valid.unreadable": (
        gettext_noop("config.json could not be read ({detail})."),
        gettext_noop("Make config.json a readable regular file (check its permissions) and inspect again."),
    ),
    "config_valid.not_object": (
        gettext_noop("config.json holds a JSON {type}, not an object."),
        gettext_noop("config.json must be a JSON object with a model_type: re-save it with save_pretrained."),
    ),
    "config_valid.no_model_type": (
        gettext_noop("config.json has no model_type string."),
        gettext_noop('Add "model_type" (e.g. "llama") to config.json, as save_pretrained writes it.'),
    ),
    # architecture
    "architecture.skip": (gettext_noop("Needs a valid config.json."), None),
    "architecture.pass": (gettext_noop('model_type "{model_type}" is certified by the platform.'), None),
    "architecture.warn": (
        gettext_noop('model_type "{model_type}" is not certified, but the vLLM runtime implements {architecture}.'),
        gettext_noop("It may be deployed with {spec}, but failures of uncertified architectures are not supported: "
                     "prefer a certified architecture for production."),
    ),
    "architecture.fail": (
        gettext_noop('model_type "{model_type}" ({architecture}) is neither certified nor a text-generation '
                     "architecture of the vLLM runtime."),
        gettext_noop("Use a model of a supported architecture (see the catalog): embedding-only and custom "
                     "architectures cannot be served."),
    ),
    "architecture.fail_mismatch": (
        gettext_noop('model_type "{model_type}" is neither certified nor known to transformers, and config.json '
                     "brings no code for it (auto_map): the runtime cannot load the model, although the vLLM "
                     "runtime implements {architecture}."),
        gettext_noop("Set model_type to the type of {architecture} as transformers' save_pretrained writes it, or "
                     "use a model of a certified architecture (see the catalog)."),
    ),
    # trust_remote_code
    "trust_remote_code.skip": (gettext_noop("Needs a valid config.json."), None),
    "trust_remote_code.pass": (gettext_noop("config.json has no auto_map: no custom code is needed."), None),
    "trust_remote_code.warn": (
        gettext_noop("config.json has an auto_map ({classes}): custom code will not run on the platform."),
        gettext_noop('Make sure the model loads with transformers\' built-in classes for "{model_type}" without '
                     "trust_remote_code, or use a variant of the model that does."),
    ),
    # weights_format
    "weights_format.pass": (gettext_noop("The weights are safetensors ({count} file(s))."), None),
    "weights_format.warn": (
        gettext_noop("The weights are only in PyTorch format ({files}): they need conversion to safetensors."),
        gettext_noop("The platform's conversion utility converts them during preparation; cfm's Prepare "
                     "(convert_weights_to_safetensors) does it now, without unpickling anything here."),
    ),
    "weights_format.fail_none": (
        gettext_noop("No weight files were found at the root of the model folder."),
        gettext_noop("Add the model's weights as .safetensors files (save_pretrained with safe_serialization)."),
    ),
    "weights_format.fail_empty": (
        gettext_noop("The safetensors weights ({files}) hold no tensors."),
        gettext_noop("Save the model's weights with transformers' save_pretrained: these files are empty."),
    ),
    "weights_format.fail_unusable": (
        gettext_noop("The weights are only in formats the platform cannot use ({files})."),
        gettext_noop("Export the model to safetensors with transformers' save_pretrained: these formats cannot be "
                     "converted by the platform."),
    ),
    # safetensors_header
    "safetensors_header.skip": (gettext_noop("There are no safetensors weights to check."), None),
    "safetensors_header.pass": (
        gettext_noop("All {count} safetensors header(s) are valid ({tensors} tensors)."), None),
    "safetensors_header.fail": (
        gettext_noop("The header of {file} is malformed: {reason}"),
        gettext_noop("Re-save the weights with transformers' save_pretrained or safetensors' save_file: {file} is "
                     "damaged or was not written by a safetensors writer."),
    ),
    "safetensors_header.lfs_pointer": (
        gettext_noop("{file} is not the weights: {reason}"),
        gettext_noop("Fetch the weights in the clone with git lfs install then git lfs pull (or download the model "
                     "with huggingface_hub), and inspect it again."),
    ),
    # safetensors_index
    "safetensors_index.skip": (gettext_noop("There are no safetensors weights to check."), None),
    "safetensors_index.pass_single": (gettext_noop("A single safetensors file: no index is needed."), None),
    "safetensors_index.pass": (
        gettext_noop("{index} and the {count} shards agree ({tensors} tensors)."), None),
    "safetensors_index.missing_shard": (
        gettext_noop("{index} names {shard}, which is not in the model folder."),
        gettext_noop("Restore {shard}, or re-save the model so that the shards and the index are written together."),
    ),
    "safetensors_index.missing_tensor": (
        gettext_noop("{index} places {tensor} in {shard}, whose header lacks it."),
        gettext_noop("Re-save the model so that the shards and the index are written together."),
    ),
    "safetensors_index.extra_tensor": (
        gettext_noop("{shard} holds {tensor}, which {index} does not list."),
        gettext_noop("Re-save the model so that the shards and the index are written together."),
    ),
    "safetensors_index.duplicate": (
        gettext_noop("Tensor {tensor} appears in both {first} and {second}."),
        gettext_noop("Each tensor must live in exactly one shard: re-save the model with save_pretrained."),
    ),
    "safetensors_index.no_index": (
        gettext_noop("{count} safetensors files ({files}) but no model.safetensors.index.json ties them together."),
        gettext_noop("Add the model.safetensors.index.json that save_pretrained writes with sharded weights."),
    ),
    "safetensors_index.invalid": (
        gettext_noop("{index} is not a valid index ({detail})."),
        gettext_noop('Re-save the model so that {index} is a JSON object with a "weight_map".'),
    ),
    "safetensors_index.unreadable": (
        gettext_noop("{index} could not be read ({detail})."),
        gettext_noop("Make {index} a readable regular file (check its permissions) and inspect again."),
    ),
    # safetensors_metadata
    "safetensors_metadata.skip": (gettext_noop("There are no readable safetensors headers to check."), None),
    "safetensors_metadata.pass": (
        gettext_noop('Every safetensors header has __metadata__ {{"format": "pt"}}.'), None),
    "safetensors_metadata.missing": (
        gettext_noop('{file} has no __metadata__ format (the platform expects {{"format": "pt"}}).'),
        gettext_noop('cfm\'s Prepare (fix_safetensors_metadata) rewrites only the header with {{"format": "pt"}}; '
                     "or re-save the model with transformers' save_pretrained."),
    ),
    "safetensors_metadata.other": (
        gettext_noop('{file} has __metadata__ format "{format}", not "pt".'),
        gettext_noop('cfm\'s Prepare (fix_safetensors_metadata) rewrites only the header with {{"format": "pt"}}; '
                     "or re-save the model with transformers' save_pretrained."),
    ),
    # dtypes
    "dtypes.skip": (gettext_noop("There are no readable safetensors headers to read dtypes from."), None),
    "dtypes.pass": (gettext_noop("Tensor dtypes: {dtypes}."), None),
    "dtypes.warn": (
        gettext_noop("FP8 tensors ({dtypes}) are served only by runtimes that support FP8 weights."),
        gettext_noop("Test the deployment; if the runtime rejects FP8, use a 16-bit version of the model."),
    ),
    "dtypes.fail": (
        gettext_noop("{dtypes} tensors cannot be served (first in {file})."),
        gettext_noop("Convert the weights to float16 or bfloat16 (e.g. model.to(torch.bfloat16) then "
                     "save_pretrained)."),
    ),
    # tokenizer
    "tokenizer.skip": (gettext_noop("Time-series models have no tokenizer."), None),
    "tokenizer.pass": (gettext_noop("tokenizer.json is present and valid JSON."), None),
    "tokenizer.warn": (
        gettext_noop("Only slow-tokenizer files ({files}) were found: tokenizer.json must be generated."),
        gettext_noop("The platform's conversion utility generates it during preparation; cfm's Prepare "
                     "(generate_tokenizer_json) does it now."),
    ),
    "tokenizer.fail_none": (
        gettext_noop("No tokenizer was found (no tokenizer.json, tokenizer.model, vocab.json with merges.txt, or "
                     "spiece.model)."),
        gettext_noop("Add the files that tokenizer.save_pretrained writes."),
    ),
    "tokenizer.not_file": (
        gettext_noop("{file} at the root of the model folder is a {kind}, not a regular file."),
        gettext_noop("Replace it with the tokenizer.json file that tokenizer.save_pretrained writes."),
    ),
    "tokenizer.fail_invalid": (
        gettext_noop("tokenizer.json is not valid JSON ({detail})."),
        gettext_noop("Re-save the tokenizer with tokenizer.save_pretrained."),
    ),
    "tokenizer.fail_invalid_prepare": (
        gettext_noop("tokenizer.json is not valid JSON ({detail})."),
        gettext_noop("cfm's Prepare (generate_tokenizer_json) writes a new one from {files}, as the platform's "
                     "conversion utility would; or re-save the tokenizer with tokenizer.save_pretrained."),
    ),
    "tokenizer.fail_unreadable": (
        gettext_noop("tokenizer.json could not be read ({detail})."),
        gettext_noop("Make tokenizer.json a readable regular file (check its permissions) and inspect again."),
    ),
    "tokenizer.fail_too_large": (
        gettext_noop("tokenizer.json is {size} bytes, over the cap of {cap} bytes."),
        gettext_noop("If this tokenizer is genuine, raise the CFM_MAX_SMALL_FILE_BYTES setting."),
    ),
    # quantization
    "quantization.skip": (gettext_noop("Needs a valid config.json."), None),
    "quantization.pass_none": (gettext_noop("The weights are not quantized."), None),
    "quantization.pass": (gettext_noop('{method} quantization is certified for "{model_type}".'), None),
    "quantization.warn": (
        gettext_noop('{method} quantization is not certified for "{model_type}" (certified: {certified}).'),
        gettext_noop("It may deploy, but failures are not supported: use an unquantized model or a certified "
                     "method."),
    ),
    "quantization.warn_unnamed": (
        gettext_noop("config.json has a quantization_config without a quant_method."),
        gettext_noop("Name the method in quantization_config.quant_method, as the quantizer writes it."),
    ),
    # tsfm_config
    "tsfm_config.skip": (gettext_noop("Not a time-series model: tsfm_config.json is not needed."), None),
    "tsfm_config.skip_config": (gettext_noop("Needs a valid config.json."), None),
    "tsfm_config.pass": (
        gettext_noop("tsfm_config.json is present and names an allowed handler ({handler})."), None),
    "tsfm_config.missing": (
        gettext_noop("tsfm_config.json is missing: forecasting fails without it."),
        gettext_noop("cfm's Prepare (add_tsfm_config) writes it from config.json; or add the file published with "
                     "the model."),
    ),
    "tsfm_config.unreadable": (
        gettext_noop("tsfm_config.json could not be read ({detail})."),
        gettext_noop("Make tsfm_config.json a readable regular file (check its permissions) and inspect again."),
    ),
    "tsfm_config.invalid": (
        gettext_noop("tsfm_config.json is not valid JSON ({detail})."),
        gettext_noop("Replace tsfm_config.json with the published one, or remove it and let cfm's Prepare "
                     "(add_tsfm_config) write it."),
    ),
    "tsfm_config.not_object": (
        gettext_noop("tsfm_config.json holds a JSON {type}, not an object."),
        gettext_noop("Replace tsfm_config.json with the published one, or remove it and let cfm's Prepare "
                     "(add_tsfm_config) write it."),
    ),
    "tsfm_config.no_handler": (
        gettext_noop("tsfm_config.json names no handler (service_handler_* or inference_handler_* keys)."),
        gettext_noop("Replace tsfm_config.json with the published one, or remove it and let cfm's Prepare "
                     "(add_tsfm_config) write it."),
    ),
    "tsfm_config.bad_handler": (
        gettext_noop("tsfm_config.json names {module} / {cls}, which is not an allowed handler (never imported)."),
        gettext_noop("Use the handler of the published file ({allowed})."),
    ),
    "tsfm_config.warn_length": (
        gettext_noop("tsfm_config.json sets {key} to {value}, but config.json's {source_key} is {expected}: the "
                     "runtime would cut or pad series to a length the model was not trained for."),
        gettext_noop("Set {key} to {expected}, or remove tsfm_config.json and let cfm's Prepare (add_tsfm_config) "
                     "write it from config.json."),
    ),
    "tsfm_config.bad_name": (
        gettext_noop('tsfm_config.json has {key} = "{value}", expected {expected}.'),
        gettext_noop("Replace tsfm_config.json with the published one, or remove it and let cfm's Prepare "
                     "(add_tsfm_config) write it."),
    ),
    # size
    "size.skip": (gettext_noop("Cannot size the model: {reason}."), None),
    "size.pass": (
        # Not "N 16-bit-equivalent parameters": for a quantized model that number contradicts its real
        # parameter count; the page says the parameters and their bits beside it.
        gettext_noop("{serving_gb} GB of weights as served fit {configuration}."), None),
    "size.pass_estimate": (
        gettext_noop("About {params} parameters (estimated from config.json, {serving_gb} GB in 16 bits) fit "
                     "{configuration}."), None),
    "size.fail_too_large": (
        gettext_noop("{params} 16-bit-equivalent parameters ({serving_gb} GB served) exceed Large, the largest "
                     "configuration (up to 106B)."),
        gettext_noop("Use a quantized or smaller variant of the model: nothing larger than Large is offered."),
    ),
    "size.fail_no_tp": (
        gettext_noop('"{model_type}" has no tensor parallelism, so only Small (up to 26B) is available, and the model '
                     "has {params} 16-bit-equivalent parameters ({serving_gb} GB served)."),
        gettext_noop("Use a quantized variant (e.g. 4-bit GPTQ) that fits Small, or a smaller model."),
    ),
    "size.fail_too_large_estimate": (
        gettext_noop("About {params} parameters (estimated from config.json, {serving_gb} GB in 16 bits) exceed "
                     "Large, the largest configuration (up to 106B)."),
        gettext_noop("Use a quantized or smaller variant of the model: nothing larger than Large is offered."),
    ),
    "size.fail_no_tp_estimate": (
        gettext_noop('"{model_type}" has no tensor parallelism, so only Small (up to 26B) is available, and the model '
                     "has about {params} parameters (estimated from config.json, {serving_gb} GB in 16 bits)."),
        gettext_noop("Use a quantized variant (e.g. 4-bit GPTQ) that fits Small, or a smaller model."),
    ),
    "size.ts_assumed": (
        gettext_noop("No concurrent users or payload given: Small is recommended, assuming {assumption}."), None),
    "size.ts_pass": (
        gettext_noop("{configuration} serves {capacity} concurrent users for a payload of {payload} (expected "
                     "users: {users})."), None),
    "size.ts_warn_users": (
        gettext_noop("{users} concurrent users is more than Extra large serves ({capacity}) for a payload of "
                     "{payload}: Extra large is recommended."),
        gettext_noop("Spread the load over several deployments or send shorter payloads."),
    ),
    "size.ts_warn_payload": (
        gettext_noop("A payload of {payload} is beyond the guide's table: sized on its largest row ({row})."),
        gettext_noop("Test the deployment under load: the guide gives no figures past its table."),
    ),
    # software_spec
    "software_spec.skip": (gettext_noop("Needs a valid config.json."), None),
    "software_spec.pass": (
        gettext_noop('{specs} can serve "{model_type}"; {recommended} is recommended.'), None),
    "software_spec.fail": (
        gettext_noop('No software specification serves "{model_type}".'),
        gettext_noop("Only supported architectures can be deployed: see the catalog."),
    ),
    # known_issues
    "known_issues.skip": (gettext_noop("Needs a valid config.json."), None),
    "known_issues.pass": (gettext_noop("No known failure pattern matches this model."), None),
    "known_issues.rope_llama3": (
        gettext_noop('config.json sets rope_scaling with rope_type "llama3" (Llama 3.1): runtimes whose transformers '
                     "predates {min_transformers} reject it (\"rope_scaling must be a dictionary with two fields\")."),
        gettext_noop('Deploy on a runtime with transformers {min_transformers} or newer, or let cfm\'s Prepare '
                     '(fix_rope_scaling) set rope_scaling to {{"type": "dynamic", "factor": {factor}}}, which older '
                     "runtimes accept but which changes behaviour past the original context length."),
    ),
    "known_issues.rope_llama3_spec": (
        gettext_noop('config.json sets rope_scaling with rope_type "llama3" (Llama 3.1): runtimes whose transformers '
                     "predates {min_transformers} reject it (\"rope_scaling must be a dictionary with two fields\")."),
        gettext_noop("Deploy with {spec}, whose runtime has transformers {min_transformers} or newer (cfm's reading: "
                     "the platform does not publish its runtimes' versions), or, for {older}, let cfm's Prepare "
                     '(fix_rope_scaling) set rope_scaling to {{"type": "dynamic", "factor": {factor}}}, which older '
                     "runtimes accept but which changes behaviour past the original context length."),
    ),
    "known_issues.rope_llama3_no_factor": (
        gettext_noop('config.json sets rope_scaling with rope_type "llama3" (Llama 3.1) but no usable factor: '
                     "transformers cannot build the rotary embedding, and runtimes whose transformers predates "
                     "{min_transformers} reject rope_scaling anyway."),
        gettext_noop("Restore the factor the model was trained with (8.0 for the published Llama 3.1 models) in "
                     "rope_scaling, then inspect again."),
    ),
    # context (after the contract's fifteen checks)
    "context.skip_config": (gettext_noop("Needs a valid config.json."), None),
    "context.skip_time_series": (
        gettext_noop("Not a text-generation model: time-series deployments have no KV cache to size."), None),
    "context.skip_size": (
        gettext_noop("Cannot tell how many tokens fit: the model's size or its configuration is unknown."), None),
    "context.skip_fields": (
        gettext_noop("Cannot tell how many tokens fit: config.json lacks the layer, head or hidden sizes the KV "
                     "cache needs."), None),
    "context.pass": (
        gettext_noop("{configuration} holds {tokens} tokens of KV cache ({per_token} bytes a token): {sequences} "
                     "sequence(s) of {length} tokens at once."), None),
    "context.warn": (
        gettext_noop("{configuration} holds {tokens} tokens of KV cache ({per_token} bytes a token), fewer than one "
                     "sequence of {length} tokens."),
        gettext_noop("Deploy with max_sequence_length at most {largest}, or choose {next_configuration}, which holds "
                     "{next_tokens} tokens."),
    ),
    "context.warn_top": (
        gettext_noop("{configuration} holds {tokens} tokens of KV cache ({per_token} bytes a token), fewer than one "
                     "sequence of {length} tokens."),
        gettext_noop("Deploy with max_sequence_length at most {largest}: no larger configuration is available for "
                     "this model."),
    ),
    "context.warn_no_room": (
        gettext_noop("{configuration} holds {tokens} tokens of KV cache ({per_token} bytes a token), fewer than the "
                     "smallest max_sequence_length ({minimum})."),
        gettext_noop("Choose {next_configuration}, which holds {next_tokens} tokens, or a smaller or quantized "
                     "model."),
    ),
    "context.warn_no_room_top": (
        gettext_noop("{configuration} holds {tokens} tokens of KV cache ({per_token} bytes a token), fewer than the "
                     "smallest max_sequence_length ({minimum})."),
        gettext_noop("Use a smaller or quantized model: no larger configuration is available for this model."),
    ),
}

#: Sentences for a malformed safetensors header (the {reason} above).
HEADER_REASONS: dict[str, str] = {
    "header_file_too_small": gettext_noop("the file is {size} bytes, too small to hold a header."),
    "header_length_past_file": gettext_noop("it declares a {length}-byte header in a {size}-byte file."),
    "header_over_cap": gettext_noop("its {length}-byte header is over the cap of {cap} bytes."),
    "header_not_utf8": gettext_noop("the header is not UTF-8 text."),
    "header_not_json": gettext_noop("the header is not valid JSON."),
    "header_not_object": gettext_noop("the header is not a JSON object ({detail})."),
    "header_duplicate_key": gettext_noop("the header names {name} twice."),
    "header_metadata_not_object": gettext_noop("__metadata__ is not an object."),
    "header_metadata_not_string": gettext_noop("__metadata__ value {key} is a {type}, not a string."),
    "header_too_many_tensors": gettext_noop("it lists {count} tensors, over the cap of {cap}."),
    "header_bad_entry": gettext_noop("the entry of {tensor} is not a tensor description."),
    "header_unknown_dtype": gettext_noop("{tensor} has the unknown dtype {dtype}."),
    "header_bad_shape": gettext_noop("{tensor} has an invalid shape {shape}."),
    "header_bad_offsets": gettext_noop("{tensor} has invalid data_offsets {offsets}."),
    "header_offsets_out_of_range": gettext_noop("{tensor} ends at byte {end}, past the {size} bytes of data."),
    "header_size_mismatch": gettext_noop("{tensor} ({dtype} {shape}) needs {expected} bytes but its offsets span "
                                         "{actual}."),
    "header_overlap": gettext_noop("{tensor} starts at {begin}, inside the previous tensor (ending at "
                                   "{previous_end})."),
    "header_gap": gettext_noop("{tensor} starts at {begin}, leaving a gap after {previous_end}."),
    "header_trailing_bytes": gettext_noop("the tensors end at byte {end} of {size}: the rest is not indexed."),
    "header_unreadable": gettext_noop("the file could not be read ({detail})."),
    "header_lfs_pointer": gettext_noop("this is a Git LFS pointer: the weights were not downloaded (git lfs pull)."),
}


class _SafeDict(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def render(template: str | None, params: dict) -> str | None:
    if template is None:
        return None
    return template.format_map(_SafeDict(params))
