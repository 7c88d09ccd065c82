"""Every writer of an output fails or dies mid-write without leaving a complete-looking file.

A child process runs each writer under a small file size limit (RLIMIT_FSIZE), so the write really stops
part-way, the way a full disk stops it: with SIGXFSZ ignored the write fails with EFBIG (an exception), with
SIGXFSZ at its default the child is killed mid-write (like SIGKILL: no cleanup code runs). Then the writer runs
again without the limit: it succeeds and leaves no temporary file behind, also none of the killed attempt.

Run directly (`python tests/test_faults_atomic.py OUT`), this file is that child's parent: it imports the
libraries once and forks one child per attempt, printing what it found as JSON.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIMIT = 4096  # bytes: below every output written here, above nothing
TILE = "x0001_y0001"


def _writers() -> dict[str, Callable[[Path], Callable[[], list[Path]]]]:
    """Each writer of the package (and of scripts/) by name: prepare(folder) makes its input and returns
    write(), which writes into the folder and returns the targets."""
    import numpy as np
    import pandas as pd
    from affine import Affine
    from matplotlib.figure import Figure
    from rasterio.crs import CRS
    from shapely.geometry import box

    from landcover import grid as grids
    from landcover import maps, model, raster_io, reference, stack
    from landcover.atomic import atomic_path
    from landcover.classes import EOLEARN_CLASSES
    from landcover.report import page

    grid = stack.TileGrid(TILE, CRS.from_epsg(32633), Affine(10, 0, 10000, 0, -10, 20000), 64, 64)
    labels = np.random.default_rng(0).integers(0, 11, (64, 64), dtype=np.uint8)  # incompressible enough

    def figure() -> Figure:
        fig = Figure(figsize=(3, 3))
        fig.add_subplot().imshow(np.random.default_rng(1).random((64, 64)))
        return fig

    def stack_write(out: Path):
        bands = np.random.default_rng(2).integers(0, 5000, (3, 64, 64, 13), dtype=np.uint16)
        ds = stack.new_stack(
            bands, np.ones((3, 64, 64), bool), np.datetime64("2017-01-01") + np.arange(3), stack.L1C_BANDS, grid
        )
        return lambda: [stack.write(ds, out / "t.nc"), out / "t.nc"][1:]

    def write_labels(out: Path):
        return lambda: [reference.write_labels(out / "t.tif", grid, labels, labels), out / "t.tif"][1:]

    def class_geotiff(out: Path):
        return lambda: [maps.write_class_geotiff(out / "t.tif", labels, grid, EOLEARN_CLASSES), out / "t.tif"][1:]

    def merge(out: Path):
        paths = [out.parent / f"{out.name}-tile{i}.tif" for i in range(2)]
        for i, path in enumerate(paths):
            shifted = stack.TileGrid(f"x000{i}_y0001", grid.crs, grid.transform * Affine.translation(64 * i, 0), 64, 64)
            maps.write_class_geotiff(path, labels, shifted, EOLEARN_CLASSES)
        return lambda: [maps.merge_tiles(paths, out / "landcover.tif", EOLEARN_CLASSES), out / "landcover.tif"][1:]

    def save_png(out: Path):
        fig = figure()
        return lambda: [raster_io.save_png(fig, out / "t.png", dpi=50), out / "t.png"][1:]

    def save_model(out: Path):
        rng = np.random.default_rng(3)
        samples = pd.DataFrame({"tile_id": TILE, "row": np.arange(200), "col": 0, "label": rng.choice([1, 2], 200)})
        samples["B02_2017-01-01"] = samples["label"] + rng.normal(0, 1, 200)
        booster, metadata = model.train_model(samples, EOLEARN_CLASSES, 42, {"num_iterations": 30}, threads=1)
        targets = [out / "model.txt", out / "model.json"]
        return lambda: [model.save_model(booster, metadata, *targets), *targets][1:]

    def write_report(out: Path):
        metrics = {  # small: written first, complete
            "overall_accuracy": 0.5,
            "f1_weighted": 0.5,
            "f1_macro": 0.5,
            "kappa": 0.0,
            "test_pixels": 4,
            "unmapped_pixels": 0,
            "test_tiles": ["t"],
        }
        figures = {"roc": figure(), "confusion_true": figure()}
        targets = [out / "metrics.json", out / "summary.html", out / "roc.png", out / "confusion_true.png"]
        return lambda: [page.write_report(metrics, figures, out, dpi=50), *targets][1:]

    def write_grid(out: Path):
        tiles = grids.make_grid(box(0, 0, 3000, 3000), 1000, 10, crs="EPSG:32633")
        return lambda: [grids.write_grid(tiles, out / "grid.gpkg"), out / "grid.gpkg"][1:]

    def samples_parquet(out: Path):  # scripts/sample.py's write
        table = pd.DataFrame(np.random.default_rng(4).random((200, 20)), columns=[f"c{i}" for i in range(20)])

        def write():
            with atomic_path(out / "t.parquet") as tmp:
                table.to_parquet(tmp, index=False)
            return [out / "t.parquet"]

        return write

    return {
        "stack.write (stacks, clouds, features, truth)": stack_write,
        "reference.write_labels": write_labels,
        "maps.write_class_geotiff (and confidence)": class_geotiff,
        "maps.merge_tiles (COG)": merge,
        "raster_io.save_png (plots, preview, report figures)": save_png,
        "model.save_model": save_model,
        "report.write_report": write_report,
        "grid.write_grid (and synthetic reference GPKG)": write_grid,
        "samples Parquet (scripts/sample.py)": samples_parquet,
    }


def _attempt(prepare, out: Path, mode: str) -> dict:
    """Prepare and write in a forked child: mode "fail" (EFBIG), "kill" (SIGXFSZ) or "free" (no limit)."""
    report = out.parent / f"{out.name}.{mode}.json"
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            write = prepare(out)
            if mode != "free":
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXFSZ dumps core by default
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN if mode == "fail" else signal.SIG_DFL)
                resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.RLIM_INFINITY))
            try:
                result = {"error": None, "targets": [str(t) for t in write()]}
            except Exception as err:  # noqa: BLE001  (reported, and judged by the tests)
                result = {"error": f"{type(err).__name__}: {err}", "targets": None}
                # written at once: freeing a failed HDF5 writer's objects may crash the process
                resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                report.write_text(json.dumps(result))
                os._exit(0)
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            report.write_text(json.dumps(result))
        except BaseException:  # noqa: BLE001
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    result = json.loads(report.read_text()) if report.exists() else {"error": None, "targets": None}
    result["signal"] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    result["files"] = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    return result


def main(root: Path) -> dict:
    results = {}
    for number, (name, prepare) in enumerate(_writers().items()):
        out = root / f"w{number}"
        out.mkdir(parents=True)
        results[name] = {mode: _attempt(prepare, out, mode) for mode in ("fail", "kill", "free")}
    return results


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
    sys.exit(0)


# ----------------------------------------------------------------------------------------------------------------
# The tests: one child process for all writers (about 10 s).

WRITERS = [
    "stack.write (stacks, clouds, features, truth)",
    "reference.write_labels",
    "maps.write_class_geotiff (and confidence)",
    "maps.merge_tiles (COG)",
    "raster_io.save_png (plots, preview, report figures)",
    "model.save_model",
    "report.write_report",
    "grid.write_grid (and synthetic reference GPKG)",
    "samples Parquet (scripts/sample.py)",
]


@pytest.fixture(scope="module")
def attempts(tmp_path_factory):
    root = tmp_path_factory.mktemp("atomic")
    run = subprocess.run(
        [sys.executable, __file__, str(root)], capture_output=True, text=True, cwd=REPO, timeout=600, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_every_writer_is_listed(attempts):
    assert list(attempts) == WRITERS


def test_a_failed_netcdf_write_is_an_error_naming_the_file_not_a_crash(attempts):
    """HDF5 crashes closing a file whose write failed; stack.write turns that into an OSError naming the file."""
    error = attempts["stack.write (stacks, clouds, features, truth)"]["fail"]["error"]
    assert error.startswith("OSError: ") and "t.nc: writing the NetCDF file failed" in error, error
    assert "is the disk full?" in error or "File too large" in error, error


@pytest.mark.parametrize("writer", WRITERS)
def test_a_failing_write_leaves_no_partial_output(attempts, writer):
    fail, free = attempts[writer]["fail"], attempts[writer]["free"]
    assert fail["signal"] is None, f"{writer} crashed instead of raising: {fail}"
    assert fail["error"], f"{writer} did not fail under a {LIMIT}-byte limit: {fail}"
    assert free["error"] is None and free["signal"] is None, free
    targets = [Path(t).name for t in free["targets"]]
    # Nothing but complete targets: a multi-file writer may have finished its first, small file.
    leftovers = [f for f in fail["files"] if f not in targets]
    assert not leftovers, f"{writer} left {leftovers} after: {fail['error']}"
    assert targets[-1] not in fail["files"], f"{writer} left its last target after: {fail['error']}"


@pytest.mark.parametrize("writer", WRITERS)
def test_a_write_killed_midway_leaves_no_target_and_the_next_write_cleans_up(attempts, writer):
    kill, free = attempts[writer]["kill"], attempts[writer]["free"]
    assert kill["signal"] == signal.SIGXFSZ, f"{writer} was not killed mid-write: {kill}"
    targets = [Path(t).name for t in free["targets"]]
    assert targets[-1] not in kill["files"], f"{writer}: a killed write left {targets[-1]}"
    # The rerun leaves exactly the targets: the killed attempt's temporaries are gone.
    assert sorted(free["files"]) == sorted(targets), free["files"]


def test_the_data_reaches_the_disk_before_the_rename(tmp_path, monkeypatch):
    """After a power cut the target is absent or complete: fsync the file, rename, fsync the folder."""
    from landcover import atomic

    events = []
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))))
    real_replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append(("rename", str(b))), real_replace(a, b)))
    target = tmp_path / "out.json"
    with atomic.atomic_path(target) as tmp:
        tmp.write_text("{}")
    assert [kind for kind, _ in events] == ["fsync", "rename", "fsync"]
    assert events[0][1] == str(tmp) and events[1][1] == str(target) and events[2][1] == str(tmp_path)


@pytest.mark.parametrize("writer", WRITERS)
def test_every_writer_syncs_its_data_before_the_rename_and_the_folder_after(tmp_path, monkeypatch, writer):
    """Each target appears by a rename of a file that was fsynced first, and its folder is fsynced after."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "out"
    out.mkdir()
    for target in _writers()[writer](out)():
        renames = [i for i, event in enumerate(events) if event[0] == "rename" and event[2] == str(target)]
        assert renames, f"{writer}: {target.name} was not renamed into place"
        last = renames[-1]
        assert ("fsync", events[last][1]) in events[:last], f"{writer}: {target.name} renamed before its fsync"
        assert ("fsync", str(target.parent)) in events[last + 1 :], f"{writer}: folder not synced after the rename"
