"""Our side of every row: the landcover package's functions, on the same seeded inputs as run_peer.py.

Run by bench.py as `python run_ours.py CASE --repeats N` under `/usr/bin/time -v`.
"""

from __future__ import annotations

import json
import os
import warnings

import inputs
import numpy as np
from harness import WORK, Case, main

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


def clouds_paired() -> Case:
    """Ours and s2cloudless alone timed in turn in one process, on the same inputs as rows 3's separate
    processes: a paired comparison that the shared machine's process-to-process spread does not bias."""
    import time

    import run_peer

    ours, peer = clouds(), run_peer.s2cloudless()
    times: dict[str, list[float]] = {"ours": [], "s2cloudless": []}

    def run():
        for name, case in (("s2cloudless", peer), ("ours", ours)):
            started = time.perf_counter()
            case.run()
            times[name].append(time.perf_counter() - started)
        return times

    def save(result, out):
        timed = {name: values[1:] for name, values in times.items()}  # without the warm-up pair
        return {name: float(np.median(values)) for name, values in timed.items()} | {"times": timed}

    return Case(run, save)


# ---------------------------------------------------------------- row 4


def chain_stack_path() -> str:
    from run_peer import CHAIN_SIZE, CHAIN_TIMES

    return os.path.join(WORK, f"chain_stack_{CHAIN_SIZE}_{CHAIN_TIMES}_v3.nc")


def save_chain_stack() -> str:
    from run_peer import CHAIN_SIZE, CHAIN_TIMES

    path = chain_stack_path()
    if not os.path.exists(path):
        bands, is_data, times = inputs.raw_stack(CHAIN_SIZE, CHAIN_SIZE, CHAIN_TIMES, swath_edges=True)
        inputs.write_stack_file(path, bands, is_data, times, CHAIN_SIZE)
    return path


def _tile_features(stack, clouds, block_rows=None):
    from landcover.features import tile_features

    kwargs = {} if block_rows is None else {"block_rows": block_rows}
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

PREDICT_SIZE = 1000
TRAIN_FOR_PREDICT = 40000


def model_paths() -> tuple[str, str]:
    return os.path.join(WORK, "model_40k.txt"), os.path.join(WORK, "model_40k.json")


def prediction_table() -> np.ndarray:
    """The 1000 x 1000 tile's feature table (1e6, 207) float32, rows in C order of (y, x)."""
    x, _ = inputs.class_table(PREDICT_SIZE * PREDICT_SIZE, 207, seed=inputs.SEED + 1)
    return x


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


def train_samples(n: int) -> list[str]:
    """The samples tables of `n` training samples, 25 000 rows each as `sample` writes them (cached under work/)."""
    folder = os.path.join(WORK, f"train_samples_{n}")
    if not os.path.isdir(folder):
        os.makedirs(folder + ".partial", exist_ok=True)
        table = inputs.samples_frame(n)
        for part, start in enumerate(range(0, n, 25000)):
            table.iloc[start : start + 25000].to_parquet(os.path.join(folder + ".partial", f"{part:04d}.parquet"))
        del table
        os.replace(folder + ".partial", folder)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


def train(n="200000") -> Case:
    """What scripts/train.py does: read the training tiles' samples tables into one matrix, then train
    (the tables are written beforehand, by bench.py in another process, so they do not count here)."""
    from landcover.model import read_training_set, train_model

    paths = train_samples(int(n))

    def run():
        return train_model(read_training_set(paths), _classes(), seed=42, params={}, threads=2)

    def save(result, out):
        booster, _ = result
        return {"trees": booster.num_trees(), "n": int(n)}

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
    return os.path.join(WORK, "model_40k_tl2cgen.so")


def compile_model() -> dict:
    """tl2cgen: the LightGBM model as C, compiled with gcc (cached under work/)."""
    import hashlib
    import time

    import tl2cgen
    import treelite

    path = compiled_model_path()
    info = os.path.join(WORK, "model_40k_tl2cgen.json")
    with open(model_paths()[0], "rb") as f:
        model_sha = hashlib.sha1(f.read()).hexdigest()
    if os.path.exists(path) and os.path.exists(info):
        with open(info) as f:
            record = json.load(f)
        if record.get("model_sha1") == model_sha:
            return record
    t = time.perf_counter()
    model = treelite.frontend.load_lightgbm_model(model_paths()[0])
    tl2cgen.export_lib(model, toolchain="gcc", libpath=path, params={"parallel_comp": 2}, nthread=2)
    record = {"compile_s": time.perf_counter() - t, "size_mb": os.path.getsize(path) / 1e6, "model_sha1": model_sha}
    with open(info, "w") as f:
        json.dump(record, f)
    return record


def predict_compiled() -> Case:
    import tl2cgen

    record = compile_model()
    predictor = tl2cgen.Predictor(compiled_model_path(), nthread=2)
    table = prediction_table()
    classes = inputs.CLASSES_8

    def run():
        proba = predictor.predict(tl2cgen.DMatrix(table, dtype="float32"))
        return classes[proba.reshape(len(table), -1).argmax(axis=1)]

    def save(result, out):
        np.save(os.path.join(out, "predict_compiled.npy"), result)
        return record

    return Case(run, save, info=record)


# ---------------------------------------------------------------- bounded memory: per-tile jobs on a 10 km tile

BOUNDED_SIZE, BOUNDED_TIMES = 1000, 70


def bounded_path(name: str) -> str:
    return os.path.join(WORK, f"bounded_{BOUNDED_SIZE}_{BOUNDED_TIMES}", name)


def prepare_bounded() -> Case:
    """landcover.synthetic.synthesize_tile on a 1000 x 1000 TileGrid (10 km, 10 m), 70 acquisitions, 13 bands,
    written with landcover.stack.write; the truth, eroded (radius 1), as the sampling labels. Cached."""
    from landcover import stack
    from landcover.reference import erode
    from landcover.synthetic import synthesize_tile

    def run():
        if os.path.exists(bounded_path("stack.nc")) and os.path.exists(bounded_path("labels.npy")):
            return {"cached": True}
        os.makedirs(bounded_path(""), exist_ok=True)
        ds, truth = synthesize_tile(inputs.grid(BOUNDED_SIZE), inputs.SEED, inputs.YEAR, BOUNDED_TIMES)
        labels = erode(truth["land_cover"].values, 1)
        del truth
        stack.write(ds, bounded_path("stack.nc"))
        np.save(bounded_path("labels.npy"), labels)
        return {"cached": False}

    return Case(run, lambda result, out: result)


def _sizes(*names) -> dict:
    return {name: os.path.getsize(bounded_path(name)) for name in names if os.path.exists(bounded_path(name))}


def job_cloud_mask(threads="2") -> Case:
    """What scripts/cloud_mask.py does: open the stack, landcover.clouds.cloud_masks, write clouds.nc."""
    from landcover import stack
    from landcover.clouds import cloud_masks

    def run():
        with stack.open(bounded_path("stack.nc"), required=("bands", "is_data")) as ds:
            clouds = cloud_masks(ds, resolution_m=80, threshold=0.4, average_over=2, dilation_size=1)
        stack.write(clouds, bounded_path("clouds.nc"))
        return True

    return Case(run, lambda result, out: {"bytes": _sizes("stack.nc", "clouds.nc")})


def job_features() -> Case:
    """What scripts/features.py does: open stack and clouds, landcover.features.tile_features, write features.nc."""
    from landcover import stack

    def run():
        with (
            stack.open(bounded_path("stack.nc"), required=("bands", "is_data")) as ds,
            stack.open(bounded_path("clouds.nc"), required=("cloud_mask",)) as clouds,
        ):
            features = _tile_features(ds, clouds)
            stack.write(features, bounded_path("features.nc"))
        return True

    return Case(run, lambda result, out: {"bytes": _sizes("features.nc")})


def job_sample() -> Case:
    """What scripts/sample.py does: features.nc and the eroded labels -> landcover.sampling.sample_pixels -> Parquet."""
    from landcover import stack
    from landcover.atomic import atomic_path
    from landcover.sampling import sample_pixels

    def run():
        labels = np.load(bounded_path("labels.npy"))
        with stack.open(bounded_path("features.nc"), required=("features", "valid_count")) as features:
            samples = sample_pixels(labels, features, features.attrs.get("tile_id", "t"), 42, max_samples=40000)
        with atomic_path(bounded_path("samples.parquet")) as tmp:
            samples.to_parquet(tmp, index=False)
        return len(samples)

    return Case(run, lambda result, out: {"samples": int(result), "bytes": _sizes("samples.parquet")})


def job_predict(threads="2") -> Case:
    """What scripts/predict.py does: load the model, landcover.model.predict_tile on features.nc, write GeoTIFFs."""
    from landcover import stack
    from landcover.maps import write_class_geotiff, write_confidence_geotiff
    from landcover.model import load_model, predict_tile

    def run():
        booster, metadata = load_model(*model_paths())
        with stack.open(bounded_path("features.nc"), required=("features", "valid_count")) as features:
            grid = stack.grid_of(features)
            labels, confidence = predict_tile(booster, metadata, features, block_rows=128, threads=int(threads))
        write_class_geotiff(bounded_path("map.tif"), labels, grid, _classes())
        write_confidence_geotiff(bounded_path("confidence.tif"), confidence, grid)
        return True

    return Case(run, lambda result, out: {"bytes": _sizes("map.tif", "confidence.tif")})


def job_reference() -> Case:
    """The erosion part of scripts/reference.py on the 1000 x 1000 truth (rasterisation depends on the polygons)."""
    from landcover.reference import erode

    labels = np.load(bounded_path("labels.npy"))

    def run():
        return erode(labels, 1)

    return Case(run, None)


if __name__ == "__main__":
    main(
        {
            "interpolation": interpolation,
            "erosion": erosion,
            "sampling": sampling,
            "clouds": clouds,
            "clouds_paired": clouds_paired,
            "chain": chain,
            "train": train,
            "predict_ours": predict_ours,
            "predict_compiled": predict_compiled,
            "prepare_model": prepare_model,
            "prepare_bounded": prepare_bounded,
            "job_cloud_mask": job_cloud_mask,
            "job_features": job_features,
            "job_sample": job_sample,
            "job_predict": job_predict,
            "job_reference": job_reference,
        }
    )
