"""`cfm_inspect SOURCE [--json]`: the report of docs/report.md.

Exit status: 0 deployable, 1 not deployable, 2 the source could not be read
(one line on stderr, nothing on stdout, never a traceback)."""
from __future__ import annotations

import argparse
import json
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from cfm.inspection import InspectOptions, SourceError, inspect
from cfm.inspection.engine import Progress
from cfm.inspection.timeseries import parse_payload
from cfm.registry.limits import inspect_limits

_MARK = {"pass": "✓", "warn": "!", "fail": "✗", "skip": "-"}


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


class Command(BaseCommand):
    help = "Inspect a model folder, archive or Hub repo and report what the platform will make of it."
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("source", help="a model folder, a .zip/.tar/.tar.gz archive, or a Hub repo id")
        parser.add_argument("--json", action="store_true", help="print the JSON report alone on stdout")
        parser.add_argument("--revision", help="Hub branch, tag or commit (default: main)")
        parser.add_argument("--token", help="Hub access token for gated or private repos")
        parser.add_argument("--concurrent-users", type=_users, help="time series: expected concurrent users")
        parser.add_argument("--payload", type=_payload, help="time series: LENGTH or SERIESxTARGETS")
        parser.add_argument("--fail-on", choices=["fail", "warn"], default="fail",
                            help="'warn' makes a warning count as a failure for the exit status")

    def handle(self, *args, **opts):
        progress: Progress | None = None
        if not opts["json"] and sys.stderr.isatty():
            def show(step, done, total, nbytes):
                sys.stderr.write(f"\r{step} {done}/{total} ({nbytes} bytes read)   ")
            progress = show
        options = InspectOptions(limits=inspect_limits(), concurrent_users=opts["concurrent_users"],
                                 payload=opts["payload"], progress=progress)
        try:
            report = inspect(opts["source"], options=options, revision=opts["revision"], token=opts["token"],
                             hub_timeout=settings.CFM_HUB_TIMEOUT, hub_attempts=settings.CFM_HUB_MAX_RETRIES + 1)
        except SourceError as exc:
            message = exc.message
            if exc.code == "repo_not_found" and not opts["source"].lower().startswith("hf://"):
                # The command looked for a local path first; the user may have meant one.
                message = f"no local folder or archive named {opts['source']}, and {message}"
            sys.stderr.write(f"cfm_inspect: {message}\n")
            sys.exit(2)
        except KeyboardInterrupt:
            sys.stderr.write("cfm_inspect: interrupted\n")
            sys.exit(2)
        except Exception as exc:  # noqa: BLE001 - the contract: never a traceback
            sys.stderr.write(f"cfm_inspect: internal error while inspecting ({type(exc).__name__}: {exc})\n")
            sys.exit(2)
        if progress:
            sys.stderr.write("\r\033[K")
        data = report.to_dict()
        # JSON is UTF-8 (RFC 8259) whatever the locale says; the summary degrades instead of failing.
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n" if opts["json"] else self.summary(data)
        _write(text)
        failed = not data["deployable"]
        if opts["fail_on"] == "warn" and any(c["status"] == "warn" for c in data["checks"]):
            failed = True
        sys.stdout.flush()
        sys.exit(1 if failed else 0)

    @staticmethod
    def summary(d: dict) -> str:
        lines = [f"cfm inspection of {d['source']}", ""]
        params = d["parameters"]
        p = "unknown" if params is None else f"{params:,}" + ("" if d["parameters_exact"] else " (estimated)")
        lines += [
            f"  model_type     {d['model_type'] or '-'}   ({', '.join(d['architectures']) or 'no architectures'})",
            f"  family         {d['family']}   certified: {'yes' if d['certified'] else 'no'}",
            f"  parameters     {p}",
            f"  weights        {_gb(d['weight_bytes'])} stored, {_gb(d['serving_bytes'])} served",
            f"  dtypes         {', '.join(f'{k}×{v}' for k, v in d['dtypes'].items()) or '-'}",
            f"  quantization   {d['quantization'] or 'none'}",
            f"  configuration  {d['configuration'] or 'none fits'}",
            f"  software spec  {d['recommended_software_spec'] or 'none'}"
            + (f"   (also: {', '.join(s for s in d['software_specs'] if s != d['recommended_software_spec'])})"
               if len(d["software_specs"]) > 1 else ""),
            f"  preparation    {', '.join(d['preparation']) or 'none'}",
            "",
        ]
        for c in d["checks"]:
            lines.append(f"  {_MARK.get(c['status'], '?')} {c['id']:<21} {c['message']}")
            if c["remedy"]:
                lines.append(f"      → {c['remedy']}")
        lines += ["", "DEPLOYABLE" if d["deployable"] else "NOT DEPLOYABLE", ""]
        return "\n".join(lines)


def _write(text: str) -> None:
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a StringIO (tests, call_command)
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    buffer.write(text.encode("utf-8", "replace"))
    buffer.flush()


def _gb(n):
    return "-" if n is None else f"{n / 1e9:.2f} GB"
