"""A LightGBM model compiled to native code (lleaves, through LLVM), for predicting many tiles with one model.

The compiled file is LLVM's object code for the compiling machine's CPU, with a JSON sidecar naming the model's
sha256, the object's sha256, lleaves' and llvmlite's versions and the CPU (name and features, as LLVM reports them).
Native code for one CPU may hold instructions another lacks (an object built for AVX-512 dies of SIGILL on a CPU
without it), and lleaves loads an object file without any check. So `load` reads the sidecar BEFORE it loads the
object, and where the model, the object's bytes, the versions or the CPU differ (a SLURM node of another type, a
truncated copy), it logs a WARNING naming the file and both CPUs and compiles the model again, in memory, for this
CPU: such a job pays one compile instead of crashing, and the shared file is left alone for the nodes it fits.
A generic x86-64 target would avoid the recompile but gives up the vector instructions the speed comes from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from pathlib import Path

import lleaves
import llvmlite
import llvmlite.binding as llvm
import numpy as np

from .atomic import atomic_path

log = logging.getLogger(__name__)


def host_cpu() -> dict:
    """The CPU that LLVM compiles for here: its name and features."""
    llvm.initialize()
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM raises where it cannot detect them; lleaves then compiles with none
        features = ""
    return {"name": llvm.get_host_cpu_name(), "features": features, "triple": llvm.get_process_triple()}


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _versions() -> dict:
    return {"lleaves": _version("lleaves"), "llvmlite": llvmlite.__version__, "python": platform.python_version()}


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def sidecar_path(compiled_path) -> Path:
    return Path(compiled_path).with_suffix(".json")


def compile_model(model_path, compiled_path) -> dict:
    """Compile the LightGBM model file to `compiled_path` (object code) and its sidecar, both written atomically;
    returns the sidecar's record."""
    start = time.perf_counter()
    with atomic_path(compiled_path) as tmp:
        lleaves.Model(model_file=str(model_path)).compile(cache=str(tmp))
    record = {
        "model_sha256": _sha256(model_path),
        "object_sha256": _sha256(compiled_path),
        "cpu": host_cpu(),
        **_versions(),
        "compile_s": round(time.perf_counter() - start, 1),
    }
    with atomic_path(sidecar_path(compiled_path)) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    log.info(
        "compiled %s to %s in %.1f s for CPU %s", model_path, compiled_path, record["compile_s"], record["cpu"]["name"]
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
        cpu = record["cpu"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"its sidecar {side} cannot be read ({err})"
    here = host_cpu()
    if cpu != here:
        extra = sorted(set(str(cpu.get("features", "")).split(",")) - set(here["features"].split(",")))
        return (
            f"it was compiled for CPU {cpu.get('name')!r} ({cpu.get('triple')}), this is {here['name']!r} "
            f"({here['triple']}); features there and not here: {', '.join(extra[:8]) or 'none'}"
        )
    if {k: record.get(k) for k in _versions()} != _versions():
        return f"it was compiled by {[record.get(k) for k in _versions()]}, this is {list(_versions().values())}"
    if record.get("model_sha256") != _sha256(model_path):
        return f"it was compiled from another model than {model_path}"
    if not Path(compiled_path).exists() or record.get("object_sha256") != _sha256(compiled_path):
        return "its bytes are not those compiled (missing, truncated or changed)"
    return None


def load(model_path, compiled_path) -> CompiledModel:
    """The compiled model of `model_path`: the file `compiled_path` where its sidecar says it fits this model, this
    CPU and these versions; otherwise (with a WARNING saying why) the model compiled again in memory."""
    model = lleaves.Model(model_file=str(model_path))
    reason = load_reason(model_path, compiled_path)
    if reason is None:
        model.compile(cache=str(compiled_path))
        return CompiledModel(model)
    log.warning("%s not used: %s; compiling the model again for this CPU", compiled_path, reason)
    start = time.perf_counter()
    model.compile()
    log.info("compiled %s in memory in %.1f s", model_path, time.perf_counter() - start)
    return CompiledModel(model)


# Compiling costs as long as LightGBM takes for this many pixels more than the compiled model: measured on a model
# of the default methods (621 columns, 8 classes, 100 rounds: 800 trees) on 2 busy cores, 52 s to compile, 40 us a
# pixel for LightGBM and 13.5 us compiled (one thread each). Both grow with the trees, so the ratio holds for
# other model sizes roughly.
COMPILE_PAYS_PX = 2_000_000


def worth_compiling(setting: str, pixels: float) -> bool:
    """Whether a run that predicts `pixels` pixels should compile its model (`predict.compile`)."""
    if setting == "auto":
        return pixels > COMPILE_PAYS_PX
    return setting == "always"
