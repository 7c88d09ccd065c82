"""The model compiled to native code (landcover.trees): LightGBM's labels, and a compiled file from elsewhere
recompiled with a warning, never loaded blindly."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import lightgbm as lgb
import numpy as np
import pytest

from landcover import trees
from landcover.config import COMPILE_PAYS_PX, worth_compiling

# where another node of the cluster would have compiled for: another architecture, or one CPU's own features
ELSEWHERE = {
    "aarch64": {"triple": "aarch64-unknown-linux-gnu", "cpu": "generic", "features": ""},
    "avx512": {"triple": "x86_64-unknown-linux-gnu", "cpu": "sapphirerapids", "features": "+avx512f,+avx512bw"},
}


def table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features that drift with one of 4 classes, float32 as the workflow's, with missing values."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    x = (labels[:, None] * 0.3 + rng.normal(0, 0.5, (n, 12))).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    return x, labels


def train(path, seed: int) -> lgb.Booster:
    x, y = table(2000, seed)
    params = {"objective": "multiclass", "num_class": 4, "verbosity": -1, "num_threads": 1, "seed": seed}
    booster = lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=15)
    booster.save_model(str(path))
    return booster


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(model path, compiled path, booster): one compile shared by the tests, copied by those that damage it."""
    folder = tmp_path_factory.mktemp("trees")
    booster = train(folder / "model.txt", seed=1)
    trees.compile_model(folder / "model.txt", folder / "model_compiled.o")
    return folder / "model.txt", folder / "model_compiled.o", booster


def copy(compiled, tmp_path):
    model, obj, booster = compiled
    for path in (model, obj, trees.sidecar_path(obj)):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    return tmp_path / model.name, tmp_path / obj.name, booster


def test_compiled_predictions_are_lightgbms(compiled):
    model, obj, booster = compiled
    x, _ = table(20000, seed=7)
    expected = booster.predict(x)
    proba = trees.load(model, obj).predict(x, num_threads=2)
    assert proba.shape == expected.shape
    assert (proba.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.9999
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-9)


def test_the_sidecar_names_model_object_versions_and_cpus(compiled):
    model, obj, _ = compiled
    record = json.loads(trees.sidecar_path(obj).read_text())
    assert record["model_sha256"] == trees._sha256(model) and record["object_sha256"] == trees._sha256(obj)
    assert record["target"] == trees.target() and record["target"]["features"] == ""  # the baseline: any node
    assert record["compiled_on"] == trees.host_cpu() and record["compiled_on"]["name"]
    assert record["lleaves"] and record["llvmlite"].startswith("0.4")
    assert sorted(p.name for p in obj.parent.iterdir()) == ["model.txt", "model_compiled.json", "model_compiled.o"]


@pytest.mark.parametrize("elsewhere", sorted(ELSEWHERE))
def test_a_file_compiled_for_another_target_is_compiled_again_with_a_warning(compiled, tmp_path, caplog, elsewhere):
    model, obj, booster = copy(compiled, tmp_path)
    side = trees.sidecar_path(obj)
    record = json.loads(side.read_text())
    side.write_text(json.dumps({**record, "target": ELSEWHERE[elsewhere], "compiled_on": {"name": "neoverse-v2"}}))
    obj.write_bytes(b"\x7fELF not code for this CPU")  # loading it would crash: it must not be loaded
    with caplog.at_level(logging.WARNING, logger="landcover.trees"):
        model_here = trees.load(model, obj)
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(obj) in warning and "'neoverse-v2'" in warning and repr(trees.host_cpu()["name"]) in warning
    assert ELSEWHERE[elsewhere]["cpu"] in warning
    x, _ = table(500, seed=8)
    np.testing.assert_allclose(model_here.predict(x), booster.predict(x), rtol=0, atol=1e-9)
    assert obj.read_bytes() == b"\x7fELF not code for this CPU"  # the shared file is left alone


def test_a_file_compiled_from_another_model_is_compiled_again(compiled, tmp_path, caplog):
    _, obj, _ = copy(compiled, tmp_path)
    other = train(tmp_path / "other.txt", seed=2)
    with caplog.at_level(logging.WARNING, logger="landcover.trees"):
        model_here = trees.load(tmp_path / "other.txt", obj)
    assert "another model" in caplog.text
    x, _ = table(500, seed=9)
    np.testing.assert_allclose(model_here.predict(x), other.predict(x), rtol=0, atol=1e-9)


@pytest.mark.parametrize("damage", ["truncated", "no sidecar", "bad sidecar"])
def test_a_damaged_compiled_file_is_never_loaded(compiled, tmp_path, damage):
    """In a subprocess: loading a damaged object would kill the process, not raise."""
    model, obj, _ = copy(compiled, tmp_path)
    if damage == "truncated":
        obj.write_bytes(obj.read_bytes()[: obj.stat().st_size // 2])
    elif damage == "no sidecar":
        trees.sidecar_path(obj).unlink()
    else:
        trees.sidecar_path(obj).write_text("{")
    script = (
        "import sys, logging, numpy as np; logging.basicConfig(); from landcover import trees; "
        f"m = trees.load({str(model)!r}, {str(obj)!r}); print(m.predict(np.zeros((3, 12), np.float32)).shape)"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(3, 4)"
    assert f"{obj} not used" in run.stderr and "compiling the model again" in run.stderr


@pytest.mark.parametrize(
    ("setting", "pixels", "expected"),
    [
        ("auto", 9 * 250 * 250, False),  # make demo: 9 tiles of 2.5 km
        ("auto", 260 * 1000 * 1000, True),  # Slovenia: 260 tiles of 10 km
        ("auto", COMPILE_PAYS_PX, False),
        ("auto", COMPILE_PAYS_PX + 1, True),
        ("always", 1, True),
        ("never", 1e12, False),
    ],
)
def test_compile_auto_compiles_where_the_saving_exceeds_the_compile(setting, pixels, expected):
    assert worth_compiling(setting, pixels) is expected
