"""A LightGBM model compiled to native code (lleaves, through LLVM), for predicting many tiles with one model.

The compiled file is LLVM's object code with a JSON sidecar naming the model's sha256, the object's sha256,
lleaves', llvmlite's and Python's versions, the target it was compiled for and the CPU it was compiled on.
It is compiled for the baseline CPU of the machine's architecture (x86-64: SSE2, no AVX), not for the compiling
CPU: measured on an 800-tree, 621-column model, the baseline object predicts as fast as the host-tuned one (0.626
against 0.632 s for 30 000 rows; the trees are compares and branches, not vector work), and it runs on every node
of that architecture, so a SLURM node of another CPU type loads the shared file as it is. Native code for another
target could hold instructions this CPU lacks (AVX-512: SIGILL), and lleaves loads an object file without any
check, so `load` reads the sidecar BEFORE it loads the object; where the target (another architecture, or a file
compiled for one CPU's own features), the model, the object's bytes or the versions differ, it logs a WARNING
naming the file and both CPUs and compiles the model again, in memory, for itself: that job pays one compile
instead of crashing, and the shared file is left alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from importlib.metadata import version
from pathlib import Path

import lleaves
import llvmlite
import llvmlite.binding as llvm
import numpy as np

from .atomic import atomic_path

log = logging.getLogger(__name__)


def host_cpu() -> dict:
    """This machine's CPU as LLVM sees it: its name and features."""
    _initialise()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM raises where it cannot detect them
        features = ""
    return {"name": llvm.get_host_cpu_name(), "features": features}


def target() -> dict:
    """What this machine compiles for and can load: its architecture's baseline CPU, without extra features."""
    _initialise()
    triple = llvm.get_process_triple()
    return {"triple": triple, "cpu": "x86-64" if triple.startswith("x86_64") else "generic", "features": ""}


def _initialise() -> None:
    llvm.initialize()
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def _compile(model: lleaves.Model, cache: str | None = None) -> None:
    aim = target()
    model.compile(cache=cache, target_cpu=aim["cpu"], target_cpu_features=aim["features"])


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _versions() -> dict:
    return {"lleaves": version("lleaves"), "llvmlite": llvmlite.__version__, "python": platform.python_version()}


def sidecar_path(compiled_path) -> Path:
    return Path(compiled_path).with_suffix(".json")


def compile_model(model_path, compiled_path) -> dict:
    """Compile the LightGBM model file to `compiled_path` (object code) and its sidecar, both written atomically;
    returns the sidecar's record."""
    start = time.perf_counter()
    with atomic_path(compiled_path) as tmp:
        _compile(lleaves.Model(model_file=str(model_path)), cache=str(tmp))
    record = {
        "model_sha256": _sha256(model_path),
        "object_sha256": _sha256(compiled_path),
        "target": target(),
        "compiled_on": host_cpu(),
        **_versions(),
        "compile_s": round(time.perf_counter() - start, 1),
    }
    with atomic_path(sidecar_path(compiled_path)) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    log.info(
        "compiled %s to %s in %.1f s for %s", model_path, compiled_path, record["compile_s"], record["target"]["cpu"]
    )
    return record


class CompiledModel:
    """A compiled model with Booster.predict's call for the workflow's use: class probabilities (n, K)."""

    def __init__(self, model: lleaves.Model):
        self._model = model

    def num_trees(self) -> int:
        return self._model.num_trees()

    def predict(self, table: np.ndarray, num_threads: int = 1) -> np.ndarray:
        return self._model.predict(table, n_jobs=num_threads).reshape(len(table), -1)


def load_reason(model_path, compiled_path) -> str | None:
    """Why the compiled file cannot be loaded here, or None."""
    side = sidecar_path(compiled_path)
    try:
        record = json.loads(side.read_text())
        aim = record["target"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"its sidecar {side} cannot be read ({err})"
    if aim != target():
        here, there = host_cpu(), record.get("compiled_on") or {}
        return f"it was compiled on CPU {there.get('name')!r} for {aim}, this CPU {here['name']!r} needs {target()}"
    if {k: record.get(k) for k in _versions()} != _versions():
        return f"it was compiled by {[record.get(k) for k in _versions()]}, this is {list(_versions().values())}"
    if record.get("model_sha256") != _sha256(model_path):
        return f"it was compiled from another model than {model_path}"
    if not Path(compiled_path).exists() or record.get("object_sha256") != _sha256(compiled_path):
        return "its bytes are not those compiled (missing, truncated or changed)"
    return None


def load(model_path, compiled_path) -> CompiledModel:
    """The compiled model of `model_path`: the file `compiled_path` where its sidecar says it fits this model, this
    machine and these versions; otherwise (with a WARNING saying why) the model compiled again in memory."""
    model = lleaves.Model(model_file=str(model_path))
    reason = load_reason(model_path, compiled_path)
    if reason is None:
        _compile(model, cache=str(compiled_path))
        log.info("predicting with %s, the model compiled by lleaves", compiled_path)
        return CompiledModel(model)
    log.warning("%s not used: %s; compiling the model again for this CPU", compiled_path, reason)
    start = time.perf_counter()
    _compile(model)
    log.info("compiled %s in memory in %.1f s", model_path, time.perf_counter() - start)
    return CompiledModel(model)
