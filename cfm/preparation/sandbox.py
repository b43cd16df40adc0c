"""Runs worker.py in a separate, limited process and turns whatever
happens there into a result or a PrepareError.

The child gets a scrubbed environment (no database URL, no secret key, no
Hub token; Hub and transformers offline), its own session (so a kill takes
its threads and children along), resource limits it sets on itself before
reading anything, and a wall-clock deadline and cancellation enforced here.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .errors import Cancelled, PrepareError

WORKER = Path(__file__).with_name("worker.py")
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME")


def _child_env(tmp: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.update({
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
        "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "TRANSFORMERS_VERBOSITY": "error", "PYTHONDONTWRITEBYTECODE": "1",
        "HF_HOME": os.path.join(tmp, "hf"), "TMPDIR": tmp,
    })
    return env


def run_worker(task: dict, *, work_dir: Path, max_memory: int, time_limit: int,
               cancel: Callable[[], bool] | None = None,
               on_progress: Callable[[dict], None] | None = None) -> dict:
    """Run one worker command; returns its result dict (with `maxrss_bytes`
    of the child). Raises PrepareError with the child's code on failure,
    Cancelled when `cancel()` turns true."""
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".sandbox-") as tmp:
        result_path = os.path.join(tmp, "result.json")
        task = {**task, "result": result_path, "max_memory": int(max_memory), "cpu_seconds": int(time_limit)}
        task_path = os.path.join(tmp, "task.json")
        with open(task_path, "w") as fh:
            json.dump(task, fh)
        stderr_path = os.path.join(tmp, "stderr.txt")
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", str(WORKER), task_path], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=err, env=_child_env(tmp), cwd=tmp, start_new_session=True)
            reader = threading.Thread(target=_read_events, args=(proc, on_progress), daemon=True)
            reader.start()
            deadline = time.monotonic() + time_limit
            stopped = None
            while proc.poll() is None:
                if cancel and cancel():
                    stopped = "cancelled"
                elif time.monotonic() > deadline:
                    stopped = "time_limit"
                if stopped:
                    _kill(proc)
                    break
                time.sleep(0.1)
            proc.wait()
            reader.join(timeout=5)
        if stopped == "cancelled":
            raise Cancelled()
        if stopped == "time_limit":
            raise PrepareError("time_limit", f"the {task['command']} step took longer than {time_limit} s")
        if os.path.exists(result_path):
            with open(result_path) as fh:
                result = json.load(fh)
            if not result.get("ok"):
                raise PrepareError(result.get("code", "worker_crashed"), result.get("message", "the step failed"))
            return result
        tail = Path(stderr_path).read_bytes()[-4000:].decode("utf-8", "replace")
        raise _death(proc.returncode, tail, task["command"])


def _read_events(proc: subprocess.Popen, on_progress) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        if not on_progress:
            continue
        try:
            event = json.loads(raw)
        except ValueError:
            continue  # libraries may print; only our JSON lines count
        if isinstance(event, dict) and event.get("event") == "progress":
            on_progress(event)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _death(returncode: int, stderr_tail: str, command: str) -> PrepareError:
    """A child that died without writing a result: name the likely cause."""
    if "MemoryError" in stderr_tail or "bad_alloc" in stderr_tail or "Cannot allocate memory" in stderr_tail \
            or "DefaultCPUAllocator" in stderr_tail:
        return PrepareError("out_of_memory", f"the {command} step went over the memory limit")
    if returncode == -signal.SIGXCPU:
        return PrepareError("time_limit", f"the {command} step used up its CPU time")
    if returncode == -signal.SIGKILL:
        return PrepareError("out_of_memory", f"the {command} process was killed (likely out of memory)")
    return PrepareError("worker_crashed", f"the {command} process ended with status {returncode}")
