"""Our side of every row: the landcover package's functions, on the same seeded inputs as run_peer.py.

Run by bench.py as `python run_ours.py CASE --repeats N` under `/usr/bin/time -v`.
"""

from __future__ import annotations

import json
import os
import warnings

import inputs
import numpy as np
from harness import Case, main
from inputs import CHAIN_SIZE, CHAIN_TIMES, PREDICT_SIZE, TRAIN_FOR_PREDICT, WORK, model_paths, prediction_table

warnings.filterwarnings("ignore")


def _interpolate():
    """landcover.features.interpolate is landcover.interpolate.interpolate; importing it from its own numpy-only
    module keeps xarray/rioxarray (~135 MB of RSS) out of this row's peak, as the function does not use them."""
    try:
        from landcover.interpolate import interpolate
    except ImportError:
        from landcover.features import interpolate
    return interpolate


def _date_grid():
    try:
        from landcover.interpolate import date_grid
    except ImportError:
        from landcover.features import date_grid
    return date_grid


# ---------------------------------------------------------------- row 1


def interpolation() -> Case:
    interpolate = _interpolate()
    values, valid, times, _ = inputs.interpolation_inputs()
    dates = _date_grid()(inputs.DATE_START, inputs.DATE_END, inputs.STEP_DAYS)
    checksum = inputs.checksum(values, valid)

    def run():
        return interpolate(values, valid, times, dates)

    def save(result, out):
        np.save(os.path.join(out, "interp_ours.npy"), result)
        return {
            "dtype": str(result.dtype),
            "shape": list(result.shape),
            "dates": [str(d) for d in np.asarray(dates, dtype="datetime64[D]")],
            "input": checksum,
        }

    return Case(run, save)


def interpolation_real() -> Case:
    """The real patch's NDVI through IS_VALID onto the 2017 grid, under each time-of-day convention (timed: the
    workflow's default)."""
    interpolate = _interpolate()
    ndvi, valid, times = inputs.real_patch()
    dates = _date_grid()(inputs.DATE_START, inputs.DATE_END, inputs.STEP_DAYS)

    def run():
        return interpolate(ndvi, valid, times, dates)

    def save(result, out):
        from landcover.interpolate import TIME_OF_DAY_MODES, evaluation_times

        for convention in (*TIME_OF_DAY_MODES, "00:00"):
            np.save(
                os.path.join(out, f"interp_real_ours_{convention.replace(':', '')}.npy"),
                interpolate(ndvi, valid, times, dates, time_of_day=convention),
            )
        at = {c: str(evaluation_times(dates[:1], times, c)[0][0]) for c in TIME_OF_DAY_MODES}
        on_grid = _date_grid()(inputs.DATE_START, "2017-12-19", 16)
        return {
            "dates": [str(d) for d in dates],
            "evaluated_at": at,
            "end_on_grid_dates": len(on_grid),
            "input": inputs.checksum(ndvi, valid),
        }

    return Case(run, save)


# ---------------------------------------------------------------- row 2


def erosion() -> Case:
    from landcover.reference import erode

    labels = inputs.labels(500)

    def run():
        return erode(labels, 1)

    def save(result, out):
        np.save(os.path.join(out, "erosion_ours.npy"), result)
        return {"input": inputs.checksum(labels)}

    return Case(run, save)


def sampling() -> Case:
    from landcover.reference import erode
    from landcover.sampling import sample_pixels

    labels = inputs.labels(500)
    cube = inputs.features_cube(500)
    eroded = erode(labels, 1)
    features = inputs.features_dataset(cube, 500)

    def run():
        return sample_pixels(eroded, features, "x0000_y0000", 42, max_samples=None, fraction=0.2)

    def save(result, out):
        return {"samples": len(result), "input": inputs.checksum(labels, cube)}

    return Case(run, save)


# ---------------------------------------------------------------- row 3


def clouds() -> Case:
    from landcover.clouds import cloud_masks

    bands, is_data, times = inputs.raw_stack(500, 500, 60)
    checksum = inputs.checksum(bands, is_data)
    stack = inputs.stack_dataset(bands, is_data, times, 500)
    del bands, is_data

    def run():
        return cloud_masks(stack, resolution_m=80, threshold=0.4, average_over=2, dilation_size=1)

    def save(result, out):
        mask = result["cloud_mask"].values
        np.save(os.path.join(out, "clouds_ours_mask.npy"), mask)
        return {"input": checksum}

    return Case(run, save)


# ---------------------------------------------------------------- row 4


def chain_stack_path() -> str:
    return os.path.join(WORK, f"chain_stack_{CHAIN_SIZE}_{CHAIN_TIMES}_v3.nc")


def save_chain_stack() -> str:
    path = chain_stack_path()
    if not os.path.exists(path):
        bands, is_data, times = inputs.raw_stack(CHAIN_SIZE, CHAIN_SIZE, CHAIN_TIMES, swath_edges=True)
        inputs.write_stack_file(path, bands, is_data, times, CHAIN_SIZE)
    return path


def _tile_features(stack, clouds, block_rows=None, coverage_window=None):
    from landcover.features import tile_features

    kwargs = {} if block_rows is None else {"block_rows": block_rows}
    kwargs |= {} if coverage_window is None else {"coverage_window": coverage_window}
    return tile_features(
        stack,
        clouds,
        bands=list(inputs.FEATURE_BANDS),
        indices=list(inputs.INDICES),
        dates=_date_grid()(inputs.DATE_START, inputs.DATE_END, inputs.STEP_DAYS),
        valid_coverage_threshold=0.8,
        **kwargs,
    )


def chain() -> Case:
    from landcover import stack as tiles
    from landcover.clouds import cloud_masks

    path = save_chain_stack()

    def run():
        with tiles.open(path, required=("bands", "is_data")) as stack:
            clouds = cloud_masks(stack, resolution_m=80, threshold=0.4, average_over=2, dilation_size=1)
            features = _tile_features(stack, clouds)
            features.load()
        return features

    def save(result, out):
        data = result["features"].transpose("date", "y", "x", "feature").values
        np.save(os.path.join(out, "chain_ours.npy"), data)
        return {
            "dtype": str(data.dtype),
            "shape": list(data.shape),
            "kept_dates": [x for x in str(result.attrs.get("kept_dates", "")).split(",") if x],
        }

    return Case(run, save)


# ---------------------------------------------------------------- rows 5-6: model


def _classes():
    from landcover.classes import EOLEARN_CLASSES

    return EOLEARN_CLASSES


def train_model_for_prediction() -> None:
    """Train (once, cached under work/) the model rows 5 uses: 40 000 samples, 23 dates x 9 features, 8 classes."""
    from landcover.model import save_model, train_model

    model_txt, model_json = model_paths()
    if os.path.exists(model_txt) and os.path.exists(model_json):
        return
    samples = inputs.samples_frame(TRAIN_FOR_PREDICT)
    booster, metadata = train_model(samples, _classes(), seed=42, params={}, threads=2)
    save_model(booster, metadata, model_txt, model_json)


def prepare_model() -> Case:
    return Case(lambda: train_model_for_prediction() or True, None)


def train(n="200000") -> Case:
    """What scripts/train.py does: read the training tiles' samples tables into one matrix, then train
    (the tables are written beforehand, by bench.py in another process, so they do not count here)."""
    from landcover.model import read_training_set, train_model

    paths = inputs.samples_tables(int(n))

    def run():
        return train_model(read_training_set(paths), _classes(), seed=42, params={}, threads=2)

    def save(result, out):
        booster, _ = result
        return {"trees": booster.num_trees(), "n": int(n)}

    return Case(run, save)


def train_default(n="300000", rounds="2") -> Case:
    """What scripts/train.py does at the default methods' columns (the per-date features at three spatial scales,
    then their temporal statistics): the training's memory per value that the workflow's requests use. The peak
    comes with LightGBM's binning, before the first tree, so a few `rounds` measure it."""
    from landcover.model import read_training_set, train_model

    paths = inputs.samples_tables(int(n), scales=3)

    def run():
        booster, metadata = train_model(
            read_training_set(paths, temporal_stats=True), _classes(), seed=42, params={}, threads=2,
            temporal_stats=True, rounds=int(rounds),
        )  # fmt: skip
        return booster, metadata

    def save(result, out):
        return {"trees": result[0].num_trees(), "n": int(n), "columns": len(result[1]["feature_names"])}

    return Case(run, save)


def predict_ours() -> Case:
    """landcover.model.predict_tile over the 1000 x 1000 tile (in-memory features dataset)."""
    from landcover.model import load_model, predict_tile

    booster, metadata = load_model(*model_paths())
    table = prediction_table()
    cube = table.reshape(PREDICT_SIZE, PREDICT_SIZE, 23, 9).transpose(2, 0, 1, 3)  # (date, y, x, feature) view
    features = inputs.features_dataset(cube, PREDICT_SIZE)
    del table

    def run():
        return predict_tile(booster, metadata, features, block_rows=128, threads=2)

    def save(result, out):
        np.save(os.path.join(out, "predict_ours.npy"), result[0].ravel())
        return {}

    return Case(run, save)


def compiled_model_path() -> str:
    return os.path.join(WORK, "model_40k_compiled.o")


def compile_trees() -> Case:
    """What rule compile_model does (landcover.trees, lleaves): once per model, cached under work/ with its sidecar;
    the record holds the compile's seconds. Runs in the repository's .venv: lleaves needs llvmlite < 0.45, and
    benchmarks/.venv holds eo-learn's numba 0.68 with llvmlite 0.50."""
    from landcover import trees

    def run():
        side = trees.sidecar_path(compiled_model_path())
        if os.path.exists(side) and trees.load_reason(model_paths()[0], compiled_model_path()) is None:
            with open(side) as f:
                return json.load(f)
        return trees.compile_model(model_paths()[0], compiled_model_path())

    return Case(run, lambda record, out: record)


def predict_compiled() -> Case:
    """predict_ours with the model compiled by compile_trees (as scripts/predict.py with predict.compile on)."""
    from landcover import trees
    from landcover.model import load_model, predict_tile

    _, metadata = load_model(*model_paths())
    compiled = trees.load(model_paths()[0], compiled_model_path())
    table = prediction_table()
    cube = table.reshape(PREDICT_SIZE, PREDICT_SIZE, 23, 9).transpose(2, 0, 1, 3)
    features = inputs.features_dataset(cube, PREDICT_SIZE)
    del table

    def run():
        return predict_tile(compiled, metadata, features, block_rows=128, threads=2)

    def save(result, out):
        np.save(os.path.join(out, "predict_compiled.npy"), result[0].ravel())
        return {"trees": compiled.num_trees()}

    return Case(run, save)


# ---------------------------------------------------------------- bounded memory: per-tile jobs on a 10 km tile

BOUNDED_SIZE, BOUNDED_TIMES = 1000, 70


def bounded_path(name: str) -> str:
    return os.path.join(WORK, f"bounded_{BOUNDED_SIZE}_{BOUNDED_TIMES}", name)


NATIVE_M = {"B01": 60, "B09": 60, "B10": 60, "B05": 20, "B06": 20, "B07": 20, "B8A": 20, "B11": 20, "B12": 20}
CLOUD_BLOCK = 8  # 80 m cloud bands on the 10 m grid


def sources_stack(ds, feature_bands):
    """The stack as the real sources write it (landcover.ingest.sentinelhub): the feature bands on the 10 m tile
    grid, those Sentinel-2 measures at 20 or 60 m constant over their native pixels (the sources resample them
    bilinearly: about as compressible), and all 13 bands at 80 m as `cloud_bands` for s2cloudless."""
    from landcover import stack
    from landcover.clouds import block_mean

    is_data = ds["is_data"].values
    height, width = is_data.shape[1:]
    bands = ds["bands"].sel(band=list(feature_bands)).values.copy()
    for k, name in enumerate(feature_bands):
        factor = NATIVE_M.get(name, 10) // 10
        if factor > 1:
            mean = block_mean(bands[..., k : k + 1], is_data, factor, factor)[0][..., 0]
            native = np.rint(mean * stack.REFLECTANCE_SCALE).astype(np.uint16)
            bands[..., k] = native.repeat(factor, axis=1).repeat(factor, axis=2)[:, :height, :width] * is_data
    coarse = []
    for k in range(ds.sizes["band"]):  # a band at a time: the 10 m stack is large
        mean, coarse_is_data = block_mean(ds["bands"].values[..., k : k + 1], is_data, CLOUD_BLOCK, CLOUD_BLOCK)
        coarse.append(np.rint(mean[..., 0] * stack.REFLECTANCE_SCALE).astype(np.uint16))
    out = stack.new_stack(bands, is_data, ds["time"].values, list(feature_bands), stack.grid_of(ds))
    out = out.assign(
        cloud_bands=(("time", "cloud_y", "cloud_x", "cloud_band"), np.stack(coarse, axis=-1)),
        cloud_is_data=(("time", "cloud_y", "cloud_x"), coarse_is_data),
    ).assign_coords(cloud_band=[str(b) for b in ds["band"].values])
    out.attrs["cloud_pixel_blocks"] = np.array([CLOUD_BLOCK, CLOUD_BLOCK], dtype=np.int32)
    return out


def prepare_bounded() -> Case:
    """landcover.synthetic.synthesize_tile on a 1000 x 1000 TileGrid (10 km, 10 m) grown by the country's margin
    (scripts/synthesize_tile.py), 70 acquisitions, 13 bands, written with landcover.stack.write; the truth on the
    tile, eroded (radius 1), as the sampling labels; and, for the disk figures only, the same stack as the real
    sources write it (`sources_stack`). Cached (for the same margin)."""
    from landcover import stack
    from landcover.grid import crop_to_tile, grown, margin_of, with_margin
    from landcover.reference import erode
    from landcover.synthetic import synthesize_tile

    margin = inputs.country_margin_px()

    def cached() -> bool:
        if not all(os.path.exists(bounded_path(name)) for name in ("stack.nc", "labels.npy", "stack_sources.nc")):
            return False
        with stack.open(bounded_path("stack.nc")) as ds:
            return margin_of(ds) == margin

    def run():
        if cached():
            return {"cached": True}
        os.makedirs(bounded_path(""), exist_ok=True)
        grid = grown(inputs.grid(BOUNDED_SIZE), margin)
        ds, truth = synthesize_tile(grid, inputs.SEED, inputs.YEAR, BOUNDED_TIMES)
        labels = erode(crop_to_tile(with_margin(truth, margin))["land_cover"].values, 1)
        del truth
        stack.write(with_margin(ds, margin), bounded_path("stack.nc"))
        np.save(bounded_path("labels.npy"), labels)
        stack.write(sources_stack(ds, inputs.country_settings()["features"]["bands"]), bounded_path("stack_sources.nc"))
        return {"cached": False}

    return Case(run, lambda result, out: result)


def _sizes(*names) -> dict:
    return {name: os.path.getsize(bounded_path(name)) for name in names if os.path.exists(bounded_path(name))}


def job_cloud_mask(threads="2") -> Case:
    """What scripts/cloud_mask.py does: open the stack, landcover.clouds.cloud_masks, write clouds.nc."""
    from landcover import stack
    from landcover.clouds import cloud_masks
    from landcover.grid import margin_of, with_margin

    def run():
        with stack.open(bounded_path("stack.nc"), required=("bands", "is_data")) as ds:
            clouds = cloud_masks(ds, resolution_m=80, threshold=0.4, average_over=2, dilation_size=1)
            clouds = with_margin(clouds, margin_of(ds))
        stack.write(clouds, bounded_path("clouds.nc"))
        return True

    return Case(run, lambda result, out: {"bytes": _sizes("stack.nc", "stack_sources.nc", "clouds.nc")})


def job_features() -> Case:
    """What scripts/features.py does: open stack and clouds, landcover.features.tile_features (the frame filter
    judged on the tile), write features.nc."""
    from landcover import stack
    from landcover.grid import margin_of, tile_window, with_margin

    def run():
        with (
            stack.open(bounded_path("stack.nc"), required=("bands", "is_data")) as ds,
            stack.open(bounded_path("clouds.nc"), required=("cloud_mask",)) as clouds,
        ):
            features = with_margin(_tile_features(ds, clouds, coverage_window=tile_window(ds)), margin_of(ds))
            stack.write(features, bounded_path("features.nc"))
        return True

    return Case(run, lambda result, out: {"bytes": _sizes("features.nc")})


def job_sample() -> Case:
    """What scripts/sample.py does: the features (tile and margin) and the eroded labels ->
    landcover.sampling.sample_pixels, the spatial context computed at the sampled pixels -> Parquet, with the
    country config's sampling and context settings."""
    from landcover import stack
    from landcover.atomic import atomic_path
    from landcover.sampling import sample_pixels

    country = inputs.country_settings()
    sampling = country["sampling"]

    def run():
        labels = np.load(bounded_path("labels.npy"))
        with stack.open(bounded_path("features.nc"), required=("features", "valid_count")) as features:
            samples = sample_pixels(labels, features, "x0000_y0000", sampling["seed"], max_samples=sampling["max_samples"],
                                    fraction=sampling["fraction"], per_class_cap=sampling["per_class_cap"],
                                    sigmas=country["features"]["context_sigmas"])  # fmt: skip
        with atomic_path(bounded_path("samples.parquet")) as tmp:
            samples.to_parquet(tmp, index=False)
        return len(samples)

    return Case(run, lambda result, out: {"samples": int(result), "bytes": _sizes("samples.parquet")})


def job_train(threads="2") -> Case:
    """What scripts/train.py does with the country config's model settings, on this tile's samples: the
    projection's training cost per sample at the default methods' column count."""
    from landcover.classes import classes_from_config
    from landcover.model import read_training_set, save_model, train_model

    country = inputs.country_settings()
    model = country["model"]

    def run():
        samples = read_training_set([bounded_path("samples.parquet")], country["features"]["temporal_stats"])
        booster, metadata = train_model(
            samples, classes_from_config(country["classes"]), seed=model["seed"], params=dict(model["params"] or {}),
            threads=int(threads), temporal_stats=country["features"]["temporal_stats"],
            class_weight=model["class_weight"], rounds=model["rounds"],
        )  # fmt: skip
        save_model(booster, metadata, bounded_path("model.txt"), bounded_path("model.json"))
        return len(samples.labels), len(metadata["feature_names"])

    return Case(run, lambda result, out: {"samples": int(result[0]), "columns": int(result[1])})


def job_predict(threads="2") -> Case:
    """What scripts/predict.py does: load the tile's model (job_train), compiled where config/slovenia.yaml's
    predict.compile says so (landcover.trees; run from ../.venv), landcover.model.predict_tile on the features (tile
    and margin), the spatial context computed block by block, write GeoTIFFs of the tile."""
    from landcover import stack
    from landcover.config import worth_compiling
    from landcover.grid import crop_to_tile
    from landcover.maps import write_class_geotiff, write_confidence_geotiff
    from landcover.model import load_model, predict_tile
    from tools.country import country_tiles

    country = inputs.country_settings()
    compile_s = None
    if worth_compiling(country["predict"]["compile"], country_tiles() * BOUNDED_SIZE**2):
        # the compile_model rule, once per country: outside the job's time, reported beside it
        from landcover import trees

        compile_s = trees.compile_model(bounded_path("model.txt"), bounded_path("model_compiled.o"))["compile_s"]

    def run():
        booster, metadata = load_model(bounded_path("model.txt"), bounded_path("model.json"))
        if compile_s is not None:
            from landcover import trees

            booster = trees.load(bounded_path("model.txt"), bounded_path("model_compiled.o"))
        with stack.open(bounded_path("features.nc"), required=("features", "valid_count")) as features:
            grid = stack.grid_of(crop_to_tile(features))
            labels, confidence = predict_tile(booster, metadata, features, block_rows=country["predict"]["block_rows"],
                                              threads=int(threads), sigmas=country["features"]["context_sigmas"])  # fmt: skip
        write_class_geotiff(bounded_path("map.tif"), labels, grid, _classes())
        write_confidence_geotiff(bounded_path("confidence.tif"), confidence, grid)
        return True

    return Case(run, lambda result, out: {"bytes": _sizes("map.tif", "confidence.tif"), "compile_s": compile_s})


def job_reference() -> Case:
    """The erosion part of scripts/reference.py on the 1000 x 1000 truth (rasterisation depends on the polygons)."""
    from landcover.reference import erode

    labels = np.load(bounded_path("labels.npy"))

    def run():
        return erode(labels, 1)

    return Case(run, None)


# ---------------------------------------------------------------- country: merge, report, a job's fixed cost


def country_maps() -> list[str]:
    """The country's class maps (tools.country) of 1000 x 1000 px (random classes, written as `predict` writes
    them) on a 19 x 14 grid of 10 km tiles (cached under work/)."""
    from landcover.maps import write_class_geotiff
    from tools.country import country_tiles

    tiles = country_tiles()
    folder = os.path.join(WORK, f"country_maps_{tiles}")
    names = [f"x{45 + i % 19:04d}_y{505 + i // 19:04d}.tif" for i in range(tiles)]
    if not os.path.isdir(folder):
        os.makedirs(folder + ".partial", exist_ok=True)
        rng = np.random.default_rng(inputs.SEED)
        ids = np.array([c.id for c in _classes() if c.id != 0], dtype=np.uint8)
        for name in names:
            labels = ids[rng.integers(0, len(ids), (PREDICT_SIZE, PREDICT_SIZE))]
            grid = _tile_grid(name[:-4])
            write_class_geotiff(os.path.join(folder + ".partial", name), labels, grid, _classes())
        os.replace(folder + ".partial", folder)
    return [os.path.join(folder, name) for name in names]


def _tile_grid(tile_id: str):
    from landcover.grid import tile_grid

    return tile_grid(tile_id, 10_000, 10, inputs.CRS)


def prepare_country() -> Case:
    return Case(lambda: len(country_maps()), None)


def merge_country() -> Case:
    """What scripts/merge.py does for Slovenia: the country's tile maps as one COG, and its preview PNG."""
    from landcover.maps import merge_tiles, preview_png

    paths = country_maps()
    cog, png = os.path.join(WORK, "country.tif"), os.path.join(WORK, "country_preview.png")

    def run():
        merge_tiles(paths, cog, _classes())
        preview_png(cog, png, _classes())
        return True

    return Case(run, lambda result, out: {"bytes": {"landcover.tif": os.path.getsize(cog)}, "tiles": len(paths)})


def report_country(n="200000") -> Case:
    """What scripts/report.py does, on `n` test samples (the country's test tiles hold about 3 M): predict them
    with row 5's model, the metrics and the figures."""
    from pathlib import Path

    from landcover.model import class_ids, load_model, load_samples, predict_proba
    from landcover.report import figures, metrics, page

    test_paths = inputs.samples_tables(int(n), "test", seed=inputs.SEED + 7)
    train_paths = inputs.samples_tables(TRAIN_FOR_PREDICT)
    folder = Path(WORK) / "country_report"

    def run():
        booster, metadata = load_model(*model_paths())
        test = load_samples(test_paths)
        proba = predict_proba(booster, metadata, test, threads=2)
        # the samples stand in for the test tiles' pixels (the headline reads the maps)
        counts = metrics.confusion_counts(test["label"].to_numpy(), class_ids(metadata)[proba.argmax(axis=1)])
        tiles = {"test": {"pixels": len(test), "labelled_without_map_class": 0}}
        report = metrics.map_scores(counts, tiles, _classes())
        report["sampled_interior"] = metrics.sampled_scores(test, proba, metadata, _classes())
        train_labels = load_samples(train_paths, columns=["tile_id", "row", "col", "label"])["label"]
        pictures = figures.report_figures(booster, metadata, report, test, proba, train_labels, _classes())
        page.write_report(report, pictures, folder, dpi=110)
        return report["test_pixels"]

    return Case(run, lambda result, out: {"test_pixels": int(result), "n": int(n)})


OVERHEAD_SNAKEFILE = """
rule all:
    input: expand("out/{i}.txt", i=range(JOBS))

rule job:
    output: "out/{i}.txt"
    log: "logs/{i}.log"
    script: "job.py"
"""
OVERHEAD_SCRIPT = """
from landcover import stack
from landcover.logs import log_to

log_to(snakemake.log[0])
open(snakemake.output[0], "w").close()
"""


def job_overhead(jobs="8") -> Case:
    """A job's fixed cost under Snakemake (local executor, one core): `jobs` script jobs that only import what the
    rules' scripts import (landcover, xarray, h5netcdf) and write an empty file; the record's times are the whole
    run, bench.py subtracts a one-job run."""
    import shutil
    import subprocess
    import sys

    folder = os.path.join(WORK, f"overhead_{jobs}")

    def run():
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        with open(os.path.join(folder, "Snakefile"), "w") as f:
            f.write(f"JOBS = {int(jobs)}\n" + OVERHEAD_SNAKEFILE)
        with open(os.path.join(folder, "job.py"), "w") as f:
            f.write(f"import sys\nsys.path.insert(0, {inputs.REPO!r})\n" + OVERHEAD_SCRIPT)
        cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--quiet", "--workflow-profile", "none"]
        subprocess.run(cmd, cwd=folder, check=True, capture_output=True)
        return int(jobs)

    return Case(run, None)


# ---------------------------------------------------------------- the demo: make demo's two commands


def demo() -> Case:
    """What `make demo` runs after installing (the workflow on config/config.yaml, then its report), in a
    fresh folder with the laptop profile on 2 cores; the record counts the jobs from Snakemake's log."""
    import re
    import shutil
    import subprocess
    import sys

    folder = os.path.join(WORK, "demo")
    snakemake = [sys.executable, "-m", "snakemake", "-s", os.path.join(inputs.REPO, "Snakefile"), "--directory",
                 folder, "--profile", os.path.join(inputs.REPO, "profiles", "default"), "--cores", "2"]  # fmt: skip

    def run():
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(os.path.join(folder, "config"))
        shutil.copy(os.path.join(inputs.REPO, "config", "config.yaml"), os.path.join(folder, "config"))
        workflow = subprocess.run(snakemake, check=True, capture_output=True, text=True)
        subprocess.run(snakemake + ["--report", "results/report.html"], check=True, capture_output=True)
        done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", workflow.stderr)
        return int(done[-1][1]) if done else 0

    return Case(run, lambda result, out: {"jobs": int(result)})


if __name__ == "__main__":
    main(
        {
            "interpolation": interpolation,
            "erosion": erosion,
            "sampling": sampling,
            "clouds": clouds,
            "chain": chain,
            "train": train,
            "train_default": train_default,
            "predict_ours": predict_ours,
            "compile_trees": compile_trees,
            "predict_compiled": predict_compiled,
            "prepare_model": prepare_model,
            "prepare_bounded": prepare_bounded,
            "job_cloud_mask": job_cloud_mask,
            "job_features": job_features,
            "job_train": job_train,
            "job_sample": job_sample,
            "job_predict": job_predict,
            "job_reference": job_reference,
            "interpolation_real": interpolation_real,
            "prepare_country": prepare_country,
            "merge_country": merge_country,
            "report_country": report_country,
            "job_overhead": job_overhead,
            "demo": demo,
        }
    )
