"""The inspection engine: what the platform will make of a model.

`inspect(spec)` opens a source and calls `inspect_source`, which runs three
phases, each in its own module:

1. facts.py gathers what the source holds: the listing, config.json, the
   safetensors index and each safetensors header (never the weights), the
   tokenizer and tsfm_config.json, into a frozen `Facts`;
2. derived.py computes once what the facts say about the model (its family,
   parameters, dtypes, specs, sizing, memory);
3. checks/ applies the rules of `cfm.catalog`, one function per check.

`report_of` assembles the Report from the three. The command line, the
Celery task and the views all call `inspect` or `inspect_source`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cfm import catalog as rules

from . import weightfiles
from .checks import run_checks
from .derived import Derived, derive
from .facts import Facts, gather
from .jsonsafe import no_gc
from .limits import InspectLimits
from .report import Report
from .sources import Source, SourceError, open_source

#: step key, done, total, bytes read so far
Progress = Callable[[str, int, int, int], None]


@dataclass
class InspectOptions:
    limits: InspectLimits = field(default_factory=InspectLimits)
    concurrent_users: int | None = None
    payload: str | None = None
    progress: Progress | None = None


def inspect(spec: str, *, options: InspectOptions | None = None, revision: str | None = None,
            token: str | None = None, hub_timeout: float | None = None, hub_attempts: int | None = None) -> Report:
    """Inspect a local folder, archive or Hub repo id. Raises SourceError
    when the source cannot be read at all. `hub_timeout` and `hub_attempts`
    (per request) apply to a Hub source; None keeps the Hub client's defaults."""
    options = options or InspectOptions()
    with open_source(spec, limits=options.limits, revision=revision, token=token, hub_timeout=hub_timeout,
                     hub_attempts=hub_attempts) as source:
        return inspect_source(source, options)


def inspect_source(source: Source, options: InspectOptions | None = None) -> Report:
    options = options or InspectOptions()
    progress = options.progress

    def step(key: str, done: int, total: int) -> None:
        if progress:
            progress(key, done, total, source.bytes_read)

    # The cyclic collector off for the inspection (it builds no cycles): with every shard's
    # parsed header alive, each collection the parses trigger walks them all again (a 30-shard
    # folder took 2.5 times as long with it on). Back on at the end, as no_gc leaves it.
    description = source.description  # as the source describes itself before it is read
    with no_gc():
        facts = gather(source, options.limits, step)
        model = derive(facts, concurrent_users=options.concurrent_users, payload=options.payload)
        return report_of(description, facts, model)


def report_of(description: str, facts: Facts, model: Derived) -> Report:
    """The report: the model's description, then every check in the catalog's order."""
    outcomes = run_checks(facts, model)
    wanted = {o.prepare for o in outcomes if o.prepare}
    sizing = model.sizing
    return Report(
        source=description, model_type=model.model_type, architectures=model.architectures, family=model.family,
        certified=model.arch is not None, parameters=model.parameters, parameters_exact=model.parameters_exact,
        weight_bytes=model.weight_bytes, serving_bytes=model.serving_bytes, dtypes=model.dtypes,
        quantization=model.quantization, tensor_parallel=model.arch.tensor_parallel if model.arch else None,
        configuration=sizing.configuration, context_length=model.context_length, memory=model.memory,
        software_specs=model.software_specs, recommended_software_spec=model.recommended_software_spec,
        preparation=[step for step in rules.PREPARATION_STEPS if step in wanted],
        checks=[o.check for o in outcomes],
        extra={
            "files_bytes": model.files_bytes,
            "files_bytes_by_format": model.files_bytes_by_format,
            # Beyond the contract (which lets fields be added): the bytes behind each dtype as stored, for
            # the report page's chart; `dtypes` keeps counting tensors, as the contract says.
            "dtype_bytes": model.dtype_bytes,
            "limitations": list(rules.LIMITATIONS),
            "files": {"count": len(facts.files), "bytes_read": facts.bytes_read, "requests": facts.requests,
                      # what Prepare would download, from the same listing
                      "needed_bytes": sum(weightfiles.needed_files(dict(facts.files)).values())},
        })


__all__ = ["inspect", "inspect_source", "report_of", "InspectOptions", "Report", "SourceError"]
