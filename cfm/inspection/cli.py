"""The command line of the engine: `cfm-inspect` (this module's `main`, no
Django) and `manage.py cfm_inspect` (a thin wrapper that passes Django's
settings) share every argument, the output, the JSON and the exit codes:

    cfm-inspect SOURCE [--json] [--revision REV] [--token TOKEN]
                [--concurrent-users N] [--payload LENGTH|SxT] [--fail-on warn]

Exit status: 0 deployable, 1 not deployable (or a warning with --fail-on
warn), 2 the source could not be read or an argument is wrong (one line on
stderr, nothing on stdout, never a traceback).

`cfm-inspect` reads its caps from the same `CFM_` environment variables as
the server (CFM_MAX_HEADER_BYTES, CFM_HUB_TIMEOUT, ...), as strictly: a bad
value is one line on stderr and exit 2. It imports only the engine: start-up
is Python's and huggingface_hub's, not Django's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .engine import InspectOptions, Progress, inspect
from .limits import InspectLimits
from .sources import SourceError
from .timeseries import parse_payload

_MARK = {"pass": "✓", "warn": "!", "fail": "✗", "skip": "-"}


@dataclass(frozen=True)
class CliSettings:
    """What the command takes from its environment (Django's settings for
    `manage.py cfm_inspect`, the CFM_ variables for `cfm-inspect`)."""

    limits: InspectLimits
    hub_timeout: float
    hub_attempts: int


#: CFM_ variable -> (InspectLimits field or None, default, minimum); the defaults and
#: minimums are the server's (cfm/settings.py), so both commands judge a model alike.
ENGINE_ENV: dict[str, tuple[str | None, int, int]] = {
    "CFM_MAX_HEADER_BYTES": ("max_header_bytes", 100_000_000, 1024),
    "CFM_MAX_CONFIG_BYTES": ("max_config_bytes", 4_000_000, 1024),
    "CFM_MAX_SMALL_FILE_BYTES": ("max_small_file_bytes", 64_000_000, 1024),
    "CFM_MAX_JSON_DEPTH": ("max_json_depth", 200, 4),
    "CFM_MAX_TENSORS": ("max_tensors", 300_000, 1),
    "CFM_ARCHIVE_MAX_BYTES": ("archive_max_bytes", 2 * 1024**3, 1024),
    "CFM_ARCHIVE_MAX_FILES": ("archive_max_files", 10_000, 1),
    "CFM_ARCHIVE_MAX_RATIO": ("archive_max_ratio", 200, 1),
    "CFM_HUB_TIMEOUT": (None, 20, 1),
    "CFM_HUB_MAX_RETRIES": (None, 4, 0),
}


def settings_from_env(environ: Mapping[str, str] | None = None) -> CliSettings:
    """The engine's settings from CFM_ variables; ValueError names a bad one."""
    environ = os.environ if environ is None else environ
    values: dict[str, int] = {}
    for name, (_field, default, minimum) in ENGINE_ENV.items():
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            values[name] = default
            continue
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not an integer") from None
        if value < minimum:
            raise ValueError(f"{name}={value} is below the minimum {minimum}")
        values[name] = value
    limits = InspectLimits(**{f: values[n] for n, (f, _d, _m) in ENGINE_ENV.items() if f})
    return CliSettings(limits=limits, hub_timeout=float(values["CFM_HUB_TIMEOUT"]),
                       hub_attempts=values["CFM_HUB_MAX_RETRIES"] + 1)


def _users(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _payload(value: str) -> str:
    try:
        parse_payload(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a model folder, a .zip/.tar/.tar.gz archive, or a Hub repo id")
    parser.add_argument("--json", action="store_true", help="print the JSON report alone on stdout")
    parser.add_argument("--revision", help="Hub branch, tag or commit (default: main)")
    parser.add_argument("--token", help="Hub access token for gated or private repos")
    parser.add_argument("--concurrent-users", type=_users, help="time series: expected concurrent users")
    parser.add_argument("--payload", type=_payload, help="time series: LENGTH or SERIESxTARGETS")
    parser.add_argument("--fail-on", choices=["fail", "warn"], default="fail",
                        help="'warn' makes a warning count as a failure for the exit status")


def run(opts: Mapping[str, Any], settings: CliSettings, *, prog: str) -> int:
    """Inspect opts["source"], print the report, return the exit status."""
    progress: Progress | None = None
    if not opts["json"] and sys.stderr.isatty():
        def show(step, done, total, nbytes):
            sys.stderr.write(f"\r{step} {done}/{total} ({nbytes} bytes read)   ")
        progress = show
    options = InspectOptions(limits=settings.limits, concurrent_users=opts["concurrent_users"],
                             payload=opts["payload"], progress=progress)
    try:
        report = inspect(opts["source"], options=options, revision=opts["revision"], token=opts["token"],
                         hub_timeout=settings.hub_timeout, hub_attempts=settings.hub_attempts)
    except SourceError as exc:
        message = exc.message
        if exc.code == "repo_not_found" and not opts["source"].lower().startswith("hf://"):
            # The command looked for a local path first; the user may have meant one.
            message = f"no local folder or archive named {opts['source']}, and {message}"
        sys.stderr.write(f"{prog}: {message}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - the contract: never a traceback
        sys.stderr.write(f"{prog}: internal error while inspecting ({type(exc).__name__}: {exc})\n")
        return 2
    if progress:
        sys.stderr.write("\r\033[K")
    data = report.to_dict()
    # JSON is UTF-8 (RFC 8259) whatever the locale says; the summary degrades instead of failing.
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n" if opts["json"] else summary(data)
    _write(text)
    failed = not data["deployable"]
    if opts["fail_on"] == "warn" and any(c["status"] == "warn" for c in data["checks"]):
        failed = True
    sys.stdout.flush()
    return 1 if failed else 0


def summary(d: dict) -> str:
    lines = [f"cfm inspection of {d['source']}", ""]
    params = d["parameters"]
    p = "unknown" if params is None else f"{params:,}" + ("" if d["parameters_exact"] else " (estimated)")
    lines += [
        f"  model_type     {d['model_type'] or '-'}   ({', '.join(d['architectures']) or 'no architectures'})",
        f"  family         {d['family']}   certified: {'yes' if d['certified'] else 'no'}",
        f"  parameters     {p}",
        f"  weights        {_gb(d['weight_bytes'])} stored, {_gb(d['serving_bytes'])} served"
        + _listed(d),
        f"  dtypes         {', '.join(f'{k}×{v}' for k, v in d['dtypes'].items()) or '-'}",
        f"  quantization   {d['quantization'] or 'none'}",
        f"  configuration  {d['configuration'] or 'none fits'}",
        f"  software spec  {d['recommended_software_spec'] or 'none'}"
        + (f"   (also: {', '.join(s for s in d['software_specs'] if s != d['recommended_software_spec'])})"
           if len(d["software_specs"]) > 1 else ""),
        f"  preparation    {', '.join(d['preparation']) or 'none'}",
        f"  context        {_int(d.get('context_length'))} tokens",
    ]
    lines += _memory_lines(d.get("memory"))
    lines.append("")
    for c in d["checks"]:
        lines.append(f"  {_MARK.get(c['status'], '?')} {c['id']:<21} {c['message']}")
        if c["remedy"]:
            lines.append(f"      → {c['remedy']}")
    verdict = d.get("verdict")
    lines += ["", ("DEPLOYABLE" if d["deployable"] else "NOT DEPLOYABLE") + (f"   verdict: {verdict}" if verdict
                                                                             else ""), ""]
    return "\n".join(lines)


def _write(text: str) -> None:
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a StringIO (tests, call_command)
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    buffer.write(text.encode("utf-8", "replace"))
    buffer.flush()


def _int(n) -> str:
    return "unknown" if n is None else f"{n:,}"


def _memory_lines(mem) -> list[str]:
    """The memory per configuration (GPUs x 80 GB, derived from the guide, not stated by the platform)."""
    if not isinstance(mem, dict):
        return []
    lines = [f"  kv cache       {_int(mem.get('kv_cache_bytes_per_token'))} bytes a token"]
    for name, c in (mem.get("configurations") or {}).items():
        room = (f"{_gb(c['free_bytes'])} free, {_int(c['kv_cache_tokens'])} tokens of KV cache" if c["fits"]
                else "the weights do not fit")
        lines.append(f"  {name:<14} {c['gpus']} GPU x {_gb(c['gpu_memory_bytes'] // max(c['gpus'], 1))} "
                     f"(derived): {room}")
    return lines


def _listed(d: dict) -> str:
    """A .bin-only model's size from the file list (the headers gave none)."""
    listed, kinds = d.get("files_bytes"), d.get("files_bytes_by_format") or {}
    if d.get("weight_bytes") is not None or not isinstance(listed, int):
        return ""
    names = ", ".join(f".{k}" for k in kinds if k in ("bin", "pt", "pth")) or "weight"
    return f"   ({_gb(listed)} of {names} files, size from the file list)"


def _gb(n):
    return "-" if n is None else f"{n / 1e9:.2f} GB"


PROG = "cfm-inspect"


def main(argv: Sequence[str] | None = None) -> int:
    """The `cfm-inspect` console script."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Inspect a model folder, archive or Hub repo and report what watsonx.ai's "
        "custom foundation models will make of it (exit 0 deployable, 1 not, 2 unreadable).")
    add_arguments(parser)
    opts = vars(parser.parse_args(argv))  # a bad argument: usage and exit 2, as argparse does
    try:
        settings = settings_from_env()
    except ValueError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 2
    return run(opts, settings, prog=PROG)


if __name__ == "__main__":  # python -m cfm.inspection.cli
    sys.exit(main())
