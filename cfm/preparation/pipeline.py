"""The preparation run: fetch, run the steps, verify, re-inspect, store.

    result = prepare(source, steps=report["preparation"], work_dir=..., storage=..., key=...)

Resumable by design. Everything happens under `work_dir`:

    download/          the original files (the Hub client resumes partial ones)
    steps/<step>/      each step's output, complete once its `.done` file
                       (the options it ran with) exists
    build/             assembled from download/ and steps/ (hard links)
                       at the end, then moved into storage

A re-run with the same work_dir downloads only what is missing and skips
the steps whose output is complete for the same options. Nothing under
work_dir is ever shown as the prepared model: only the stored folder is,
and it arrives in storage in one rename (or with its manifest last).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfm import catalog as rules
from cfm.inspection import InspectOptions, SourceError, inspect
from cfm.inspection.hub import HubSource
from cfm.inspection.limits import InspectLimits
from cfm.inspection.sources import LocalFolderSource

from . import download as dl
from . import steps as st
from .errors import Cancelled, PrepareError
from .extras import INSTALL_HINT, missing_packages
from .sandbox import run_worker
from .storage import LocalStorage, S3Storage, Stored, write_manifest
from .stwrite import read_header, rewrite_metadata

#: transformers' default max_shard_size ("5GB")
DEFAULT_SHARD_BYTES = 5 * 10**9

#: progress stage keys (the page renders them into words)
STAGES = ("listing_files", "downloading", "convert_weights_to_safetensors", "generate_tokenizer_json",
          "add_tsfm_config", "fix_safetensors_metadata", "fix_rope_scaling", "verifying", "inspecting",
          "storing")

ProgressFn = Callable[[str, dict[str, Any]], None]


@dataclass
class SourceSpec:
    """Where the original files come from."""

    kind: str  # "hub", "archive", "folder" (an uploaded folder's manifest dir), "local" (a complete folder)
    repo_id: str = ""
    revision: str | None = None
    token: str | None = None
    endpoint: str = "https://huggingface.co"
    path: str = ""
    #: the Hub's timeout (s) and attempts per request, as for the inspection (CFM_HUB_TIMEOUT,
    #: CFM_HUB_MAX_RETRIES + 1); None: the source layer's defaults
    hub_timeout: float | None = None
    hub_attempts: int | None = None


@dataclass
class PrepareOptions:
    steps: list[str]
    #: cast F32 tensors to the config's 16-bit dtype (lossless when False)
    cast_to_16bit: bool = False
    #: None: stop for review when fix_rope_scaling is due; True/False: the user's answer
    rope_accept: bool | None = None
    max_memory: int = 8 * 1024**3
    time_limit: int = 3600
    max_shard_bytes: int = DEFAULT_SHARD_BYTES
    limits: InspectLimits = field(default_factory=InspectLimits)


class NeedsReview(Exception):
    """Not a failure: the rope_scaling edit awaits the user's answer. The
    work done so far stays in work_dir; a re-run with the answer finishes."""

    def __init__(self, diff: str, factor: float):
        super().__init__("rope_scaling edit awaits review")
        self.diff, self.factor = diff, factor


@dataclass
class PrepareResult:
    report: dict
    stored: Stored
    manifest: dict[str, dict]
    steps: dict[str, dict]
    removed: list[str]
    added: list[str]


def _noop(stage: str, data: dict) -> None:
    pass


class _Run:
    def __init__(self, source: SourceSpec, options: PrepareOptions, work_dir: Path, progress: ProgressFn | None,
                 cancel: Callable[[], bool] | None):
        self.source, self.options = source, options
        self.work = Path(work_dir).resolve()
        self.download = self.work / "download"
        self.steps_dir = self.work / "steps"
        self.build = self.work / "build"
        self.progress = progress or _noop
        self.cancel = cancel or (lambda: False)
        self.summary: dict[str, dict] = {}

    def check_cancel(self) -> None:
        if self.cancel():
            raise Cancelled()

    # -- 1. fetch -------------------------------------------------------------------------------------------
    def fetch(self) -> dict[str, int]:
        src = self.source
        self.progress("listing_files", {})
        if src.kind != "hub":
            return self._fetch(None)
        # The repo as the inspection opens it, pinned to one commit; its connections closed after.
        hub = dl.hub_open(src.repo_id, src.revision, src.token, src.endpoint, self.options.limits,
                          timeout=src.hub_timeout, attempts=src.hub_attempts)
        try:
            return self._fetch(hub)
        finally:
            hub.close()

    def _fetch(self, hub: HubSource | None) -> dict[str, int]:
        src, limits = self.source, self.options.limits
        prefix = ""
        if hub is not None:
            files = dl.needed_files(hub.list_files())
        elif src.kind == "archive":
            listing, prefix = dl.archive_listing(Path(src.path), limits)
            files = dl.needed_files(listing)
        elif src.kind == "folder":
            manifest_path = Path(src.path)
            manifest = json.loads(manifest_path.read_text())
            files = dl.folder_listing(manifest_path.parent, manifest)
        elif src.kind == "local":
            try:  # listed as the inspection lists a folder (its caps, links followed, hidden folders skipped)
                listing = LocalFolderSource(src.path, limits).list_files()
            except SourceError as exc:
                raise PrepareError("source_unavailable", exc.message) from None
            files = dl.needed_files(listing)
        else:
            raise PrepareError("unsupported", f"unknown source kind {src.kind}")
        if "config.json" not in files:
            raise PrepareError("bad_config", "the model has no config.json at its root")
        self.check_disk(files)
        state = dl.DownloadProgress(cancel=self.cancel,
                                    report=lambda p: self.progress("downloading", p.as_dict()))
        self.download.mkdir(parents=True, exist_ok=True)
        if hub is not None:
            dl.hub_download(hub, files, self.download, state)
        elif src.kind == "archive":
            dl.archive_extract(Path(src.path), prefix, files, self.download, state, limits)
        elif src.kind == "folder":
            dl.folder_copy(Path(src.path).parent / "files", files, self.download, state)
        else:
            dl.folder_copy(Path(src.path), files, self.download, state)
        state.tick(force=True)
        return files

    def check_disk(self, files: dict[str, int]) -> None:
        """Room for what is still to download plus the converted weights
        (the same bytes again; half when casting 32-bit floats)."""
        to_fetch = sum(size for name, size in files.items()
                       if not ((self.download / name).is_file() and (self.download / name).stat().st_size == size))
        converted = 0
        if "convert_weights_to_safetensors" in self.options.steps:
            converted = sum(s for n, s in files.items() if dl._is_weight_pickle(n))
        if "fix_safetensors_metadata" in self.options.steps:
            converted += sum(s for n, s in files.items() if n.endswith(".safetensors"))
        dl.check_disk(self.work, to_fetch + converted)

    # -- 2. steps ----------------------------------------------------------------------------------------------
    def step_done(self, step: str, opts: dict) -> bool:
        marker = self.steps_dir / step / ".done"
        if not marker.is_file():
            return False
        try:
            return json.loads(marker.read_text()).get("options") == opts
        except ValueError:
            return False

    def step_dir(self, step: str) -> Path:
        """A fresh temp folder for a step's output; `finish_step` renames it."""
        tmp = self.steps_dir / f".{step}.partial"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        return tmp

    def finish_step(self, step: str, tmp: Path, opts: dict, summary: dict) -> None:
        (tmp / ".done").write_text(json.dumps({"options": opts, "summary": summary}))
        final = self.steps_dir / step
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)

    def load_summary(self, step: str) -> dict:
        return json.loads((self.steps_dir / step / ".done").read_text()).get("summary", {})

    def run_steps(self, config: dict) -> None:
        wanted = [s for s in rules.PREPARATION_STEPS if s in self.options.steps]
        for step in wanted:
            if step == "fix_rope_scaling":
                continue  # last: it may stop for review
            self.check_cancel()
            opts = self.step_options(step, config)
            if not self.step_done(step, opts):
                self.progress(step, {})
                tmp = self.step_dir(step)
                summary = getattr(self, step)(tmp, config, opts)
                self.finish_step(step, tmp, opts, summary)
            self.summary[step] = self.load_summary(step)
        if "fix_rope_scaling" in wanted:
            self.rope(config)

    def step_options(self, step: str, config: dict) -> dict:
        if step == "convert_weights_to_safetensors":
            return {"cast": self.cast_dtype(config), "max_shard_bytes": self.options.max_shard_bytes}
        if step == "fix_rope_scaling":
            return {"accept": self.options.rope_accept}
        return {}

    def cast_dtype(self, config: dict) -> str | None:
        if not self.options.cast_to_16bit:
            return None
        declared = config.get("torch_dtype") or config.get("dtype")
        return "BF16" if declared == "bfloat16" else "F16"

    def bin_inputs(self) -> tuple[list[Path], dict | None]:
        index_path = next((p for p in sorted(self.download.glob("*.bin.index.json"))), None)
        if index_path is not None:
            index = json.loads(index_path.read_text())
            wm = index.get("weight_map") if isinstance(index, dict) else None
            if not isinstance(wm, dict):
                raise PrepareError("unreadable_weights", f"{index_path.name} has no weight_map")
            names = sorted(set(wm.values()))
            missing = [n for n in names if not (self.download / n).is_file()]
            if missing:
                raise PrepareError("unreadable_weights", f"{index_path.name} names {missing[0]}, which is missing")
            return [self.download / n for n in names], wm
        bins = sorted(p for p in self.download.iterdir() if p.is_file() and dl._is_weight_pickle(p.name))
        if not bins:
            raise PrepareError("unreadable_weights", "no PyTorch weights (.bin, .pt, .pth) to convert")
        return bins, None

    def convert_weights_to_safetensors(self, out: Path, config: dict, opts: dict) -> dict:
        inputs, weight_map = self.bin_inputs()
        model_type = rules.normalize_model_type(str(config.get("model_type", "")))
        tied = config.get("tie_word_embeddings")
        tied = bool(tied) if isinstance(tied, bool) else model_type in rules.DEFAULT_TIED_EMBEDDINGS
        total = sum(p.stat().st_size for p in inputs)
        result = run_worker(
            {"command": "convert", "inputs": [str(p) for p in inputs], "out_dir": str(out),
             "max_shard_bytes": opts["max_shard_bytes"], "cast": opts["cast"], "tied": tied},
            work_dir=self.work, max_memory=self.options.max_memory, time_limit=self.options.time_limit,
            cancel=self.cancel,
            on_progress=lambda e: self.progress("convert_weights_to_safetensors",
                                                {"done": e.get("bytes", 0), "total": total}))
        parts = result["parts"]
        n = len(parts)
        names = {}
        for i, part in enumerate(parts, 1):
            final = "model.safetensors" if n == 1 else f"model-{i:05d}-of-{n:05d}.safetensors"
            (out / part["file"]).rename(out / final)
            names[part["file"]] = final
        if n > 1:
            weight_map_out = {t: names[p["file"]] for p in parts for t in p["tensors"]}
            index = {"metadata": {"total_size": sum(p["bytes"] for p in parts)}, "weight_map": weight_map_out}
            st.write_json(out / "model.safetensors.index.json", index)
        self.progress("verifying", {})
        verified = verify_conversion(out, result["sources"], result["dropped"], opts["cast"], weight_map)
        return {"files": sorted(names.values()), "inputs": [p.name for p in inputs], "dropped": result["dropped"],
                "tensors": verified, "cast": opts["cast"], "seconds": result.get("seconds"),
                "peak_memory": result.get("maxrss_bytes"), "bytes": result.get("bytes")}

    def generate_tokenizer_json(self, out: Path, config: dict, opts: dict) -> dict:
        if (self.download / "tokenizer.json").is_file():
            try:  # an invalid tokenizer.json is regenerated from the slow files
                json.loads((self.download / "tokenizer.json").read_bytes())
                return {"kept": True}
            except ValueError:
                pass
        cls = st.tokenizer_class_for(self.download, config)
        # The worker reads only from a folder of the tokenizer files: no
        # config.json there, so transformers cannot be steered by it.
        src = out / ".tokenizer-src"
        src.mkdir()
        for p in self.download.iterdir():
            if p.is_file() and p.name != "config.json" and not p.name.endswith((".bin", ".safetensors", ".pt",
                                                                                   ".pth", ".json.partial")) \
                    and p.name != "tokenizer.json":
                dl.hardlink_or_copy(p, src / p.name)
        run_worker({"command": "tokenizer", "folder": str(src), "out": str(out / "tokenizer.json"),
                    "class_name": cls},
                   work_dir=self.work, max_memory=min(self.options.max_memory, 4 * 1024**3),
                   time_limit=min(self.options.time_limit, 600), cancel=self.cancel)
        shutil.rmtree(src)
        return {"class_name": cls, "files": ["tokenizer.json"]}

    def add_tsfm_config(self, out: Path, config: dict, opts: dict) -> dict:
        doc = st.tsfm_config_for(config)
        st.write_json(out / "tsfm_config.json", doc)
        return {"files": ["tsfm_config.json"], "context_length": doc["maximum_context_length"],
                "prediction_length": doc["maximum_prediction_length"]}

    def fix_safetensors_metadata(self, out: Path, config: dict, opts: dict) -> dict:
        fixed = []
        for path in sorted(self.download.glob("*.safetensors")):
            self.check_cancel()
            info, _start, _doc = read_header(path, self.options.limits)
            if (info.metadata or {}).get("format") == "pt":
                continue
            rewrite_metadata(path, out / path.name)
            after, _s, _d = read_header(out / path.name, self.options.limits)
            if {k: (v.dtype, v.shape, v.nbytes) for k, v in after.tensors.items()} != \
                    {k: (v.dtype, v.shape, v.nbytes) for k, v in info.tensors.items()}:
                raise PrepareError("verify_failed", f"{path.name}: the rewritten header lists other tensors")
            fixed.append(path.name)
        return {"files": fixed}

    def rope(self, config: dict) -> None:
        factor = st.rope_factor(config)
        if factor is None:
            self.summary["fix_rope_scaling"] = {"applied": False, "reason": "not_needed"}
            return
        accept = self.options.rope_accept
        if accept is None:
            raise NeedsReview(st.rope_diff(config), factor)
        step = "fix_rope_scaling"
        opts = {"accept": accept}
        if not self.step_done(step, opts):
            self.progress(step, {})
            tmp = self.step_dir(step)
            if accept:
                st.write_json(tmp / "config.json", st.rope_fixed(config))
            self.finish_step(step, tmp, opts, {"applied": accept, "factor": factor,
                                               "files": ["config.json"] if accept else []})
        self.summary[step] = self.load_summary(step)

    # -- 3. assemble, inspect, store -----------------------------------------------------------------------------
    def assemble(self) -> tuple[list[str], list[str]]:
        if self.build.exists():
            shutil.rmtree(self.build)
        self.build.mkdir(parents=True)
        replaced: set[str] = set()
        if "convert_weights_to_safetensors" in self.summary:
            replaced |= {p.name for p in self.download.iterdir() if p.is_file() and (
                dl._is_weight_pickle(p.name) or p.name.endswith(".bin.index.json"))}
        outputs: dict[str, Path] = {}
        for step in rules.PREPARATION_STEPS:
            d = self.steps_dir / step
            if step in self.summary and d.is_dir():
                for p in d.iterdir():
                    if p.is_file() and p.name != ".done":
                        outputs[p.name] = p
        originals = {p.name: p for p in self.download.iterdir() if p.is_file()}
        for name, path in originals.items():
            if name not in replaced and name not in outputs:
                dl.hardlink_or_copy(path, self.build / name)
        for name, path in outputs.items():
            dl.hardlink_or_copy(path, self.build / name)
        removed = sorted(replaced - set(outputs))
        added = sorted(set(outputs) - set(originals))
        return removed, added

    def reinspect(self) -> dict:
        self.progress("inspecting", {})
        try:
            return inspect(str(self.build), options=InspectOptions(limits=self.options.limits)).to_dict()
        except SourceError as exc:
            raise PrepareError("verify_failed", f"the prepared folder cannot be inspected: {exc.message}") from None


def verify_conversion(out: Path, sources: dict[str, dict], dropped: dict[str, str], cast: str | None,
                      weight_map: dict | None) -> int:
    """The written headers against the tensors the worker loaded: every
    name there (or its kept alias), same shape, same dtype (or the cast
    one for 32-bit floats), nothing else. Returns the tensor count."""
    written: dict[str, tuple[str, tuple]] = {}
    for path in sorted(out.glob("*.safetensors")):
        info, _s, _d = read_header(path)
        if (info.metadata or {}).get("format") != "pt":
            raise PrepareError("verify_failed", f"{path.name} lacks the {{'format': 'pt'}} metadata")
        for name, t in info.tensors.items():
            written[name] = (t.dtype, t.shape)
    if weight_map is not None:
        lost = sorted(set(weight_map) - set(sources))
        if lost:
            raise PrepareError("verify_failed", f"the .bin index names {lost[0]}, which no .bin file holds")
    for name, src in sources.items():
        if name not in written:
            raise PrepareError("verify_failed", f"tensor {name} is missing from the converted weights")
        dtype, shape = written[name]
        expected = cast if cast and src["dtype"] == "F32" else src["dtype"]
        if tuple(src["shape"]) != tuple(shape) or dtype != expected:
            raise PrepareError("verify_failed", f"tensor {name} changed: {src['dtype']}{src['shape']} → "
                               f"{dtype}{list(shape)}")
    for name, kept in dropped.items():
        if kept not in written:
            raise PrepareError("verify_failed", f"{name} was dropped as an alias of {kept}, which is missing")
    extra = sorted(set(written) - set(sources))
    if extra:
        raise PrepareError("verify_failed", f"the converted weights hold an unexpected tensor {extra[0]}")
    return len(written)


def prepare(source: SourceSpec, options: PrepareOptions, *, work_dir: Path, storage: LocalStorage | S3Storage,
            key: str, progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None,
            keep_work: bool = False) -> PrepareResult:
    """Run a whole preparation. Raises PrepareError (work_dir kept, so a
    re-run resumes; the caller removes it to give up), Cancelled, or
    NeedsReview. On success the work dir is removed unless keep_work."""
    missing = missing_packages(options.steps, s3=isinstance(storage, S3Storage))
    if missing:
        raise PrepareError("missing_extras", f"preparation needs {', '.join(missing)}: {INSTALL_HINT}",
                           packages=missing)
    run = _Run(source, options, work_dir, progress, cancel)
    try:
        run.fetch()
        run.check_cancel()
        config = st.read_config(run.download)
        run.run_steps(config)
        run.check_cancel()
        removed, added = run.assemble()
        report = run.reinspect()
        run.check_cancel()
        run.progress("storing", {})
        manifest = write_manifest(run.build)
        stored = storage.store(run.build, key)
    except PrepareError as exc:
        if exc.code == "disk_full":
            # Running out of disk leaves nothing behind to fill it further.
            shutil.rmtree(run.work, ignore_errors=True)
        raise
    except OSError as exc:
        if dl.is_disk_full(exc):
            shutil.rmtree(run.work, ignore_errors=True)
            raise PrepareError("disk_full", "the server ran out of disk space during preparation") from None
        raise
    if not keep_work:
        shutil.rmtree(run.work, ignore_errors=True)
    return PrepareResult(report=report, stored=stored, manifest=manifest, steps=run.summary, removed=removed,
                         added=added)


def discard_work(work_dir: Path) -> None:
    shutil.rmtree(work_dir, ignore_errors=True)


__all__ = ["prepare", "SourceSpec", "PrepareOptions", "PrepareResult", "NeedsReview", "STAGES", "discard_work",
           "verify_conversion", "Cancelled", "PrepareError", "LocalStorage", "S3Storage"]
