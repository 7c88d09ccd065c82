"""The peer side of every row: eo-learn 1.5.7 tasks, s2cloudless alone, LightGBM's own predict.

Run by bench.py as `python run_peer.py CASE --repeats N` under `/usr/bin/time -v`.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import inputs
import numpy as np
from harness import Case, main
from inputs import CHAIN_SIZE, CHAIN_TIMES, WORK

warnings.filterwarnings("ignore")


def _bbox(size_px: int, resolution_m: float = 10.0):
    from sentinelhub import CRS, BBox

    g = inputs.grid(size_px, resolution_m)
    return BBox(g.bounds, crs=CRS(32633))


def _eopatch(size_px: int, times=None):
    from eolearn.core import EOPatch

    return EOPatch(bbox=_bbox(size_px), timestamps=inputs.to_datetimes(times) if times is not None else None)


# ---------------------------------------------------------------- row 1


def interpolation() -> Case:
    from eolearn.core import FeatureType
    from eolearn.features.extra.interpolation import LinearInterpolationTask

    values, valid, times, _ = inputs.interpolation_inputs()
    checksum = inputs.checksum(values, valid)
    patch = _eopatch(values.shape[1], times)
    patch[FeatureType.DATA, "FEATURES"] = values
    patch[FeatureType.MASK, "IS_VALID"] = valid[..., None]
    del values, valid
    task = LinearInterpolationTask(
        (FeatureType.DATA, "FEATURES"),
        mask_feature=(FeatureType.MASK, "IS_VALID"),
        resample_range=(inputs.DATE_START, inputs.DATE_END, inputs.STEP_DAYS),
        parallel=True,
    )

    def run():
        return task.execute(patch)

    def save(result, out):
        data = result[FeatureType.DATA, "FEATURES"]
        np.save(os.path.join(out, "interp_peer.npy"), data)
        stamps = [t.date().isoformat() for t in result.timestamps]
        return {"dtype": str(data.dtype), "shape": list(data.shape), "dates": stamps, "input": checksum}

    return Case(run, save)


def interpolation_real() -> Case:
    """eo-learn's LinearInterpolationTask on the real patch's NDVI through IS_VALID, onto the 2017 grid."""
    from eolearn.core import FeatureType
    from eolearn.features.extra.interpolation import LinearInterpolationTask

    ndvi, valid, times = inputs.real_patch()
    patch = _eopatch(8, times)  # the bbox does not take part
    patch[FeatureType.DATA, "NDVI"] = ndvi
    patch[FeatureType.MASK, "IS_VALID"] = valid[..., None]
    task = LinearInterpolationTask(
        (FeatureType.DATA, "NDVI"),
        mask_feature=(FeatureType.MASK, "IS_VALID"),
        resample_range=(inputs.DATE_START, inputs.DATE_END, inputs.STEP_DAYS),
    )
    # a range whose end falls on the grid (2017-12-19 = 2017-01-01 + 22 x 16 days)
    on_grid = LinearInterpolationTask((FeatureType.DATA, "NDVI"), resample_range=(inputs.DATE_START, "2017-12-19", 16))

    def run():
        return task.execute(patch)

    def save(result, out):
        np.save(os.path.join(out, "interp_real_peer.npy"), result[FeatureType.DATA, "NDVI"])
        return {
            "dates": [t.date().isoformat() for t in result.timestamps],
            "end_on_grid_dates": len(on_grid.get_resampled_timestamp(patch.timestamps)),
            "input": inputs.checksum(ndvi, valid),
        }

    return Case(run, save)


# ---------------------------------------------------------------- row 2


def erosion() -> Case:
    from eolearn.core import FeatureType
    from eolearn.geometry import ErosionTask

    labels = inputs.labels(500)
    patch = _eopatch(500)
    patch[FeatureType.MASK_TIMELESS, "LULC"] = labels[..., None]
    # cv2's 3 x 3 ellipse, eo-learn's disk_radius=3, is the 4-neighbour cross: our radius 1. (eo-learn's
    # radius 1 is a 1 x 1 element and erodes nothing.)
    task = ErosionTask((FeatureType.MASK_TIMELESS, "LULC", "LULC_ERODED"), disk_radius=3)

    def run():
        return task.execute(patch)

    def save(result, out):
        np.save(os.path.join(out, "erosion_peer.npy"), result[FeatureType.MASK_TIMELESS, "LULC_ERODED"][..., 0])
        return {"input": inputs.checksum(labels)}

    return Case(run, save)


def sampling() -> Case:
    from eolearn.core import FeatureType
    from eolearn.geometry import ErosionTask
    from eolearn.ml_tools import FractionSamplingTask

    labels = inputs.labels(500)
    cube = inputs.features_cube(500)
    patch = _eopatch(500, inputs.target_dates().astype("datetime64[s]"))
    patch[FeatureType.MASK_TIMELESS, "LULC"] = labels[..., None]
    patch[FeatureType.DATA, "FEATURES"] = cube
    patch = ErosionTask((FeatureType.MASK_TIMELESS, "LULC", "LULC_ERODED"), disk_radius=3).execute(patch)
    task = FractionSamplingTask(
        features_to_sample=[
            (FeatureType.DATA, "FEATURES", "FEATURES_SAMPLED"),
            (FeatureType.MASK_TIMELESS, "LULC_ERODED", "LULC_SAMPLED"),
        ],
        sampling_feature=(FeatureType.MASK_TIMELESS, "LULC_ERODED"),
        fraction=0.2,
        exclude_values=[0],
    )

    def run():
        return task.execute(patch, seed=42)

    def save(result, out):
        return {
            "samples": int(result[FeatureType.MASK_TIMELESS, "LULC_SAMPLED"].shape[0]),
            "input": inputs.checksum(labels, cube),
        }

    return Case(run, save)


# ---------------------------------------------------------------- row 3


def _reflectance_80m():
    bands, is_data, times = inputs.raw_stack(500, 500, 60)
    checksum = inputs.checksum(bands, is_data)
    refl, has = inputs.block_mean_80m(bands, is_data)
    return refl, has, times, checksum


def s2cloudless() -> Case:
    """s2cloudless alone on the 80 m reflectance (probabilities, then its mask post-processing)."""
    from s2cloudless import S2PixelCloudDetector

    refl, _, _, checksum = _reflectance_80m()
    detector = S2PixelCloudDetector(threshold=0.4, all_bands=True, average_over=2, dilation_size=1)

    def run():
        proba = detector.get_cloud_probability_maps(refl)
        return detector.get_mask_from_prob(proba), proba

    def save(result, out):
        np.save(os.path.join(out, "clouds_s2c_mask80.npy"), result[0].astype(bool))
        return {"input": checksum, "shape80": list(refl.shape)}

    return Case(run, save)


def cloudmask_task() -> Case:
    """eo-learn's CloudMaskTask on an EOPatch of the 80 m reflectance, same settings."""
    from eolearn.core import EOPatch, FeatureType
    from eolearn.mask.extra.cloud_mask import CloudMaskTask

    refl, has, times, checksum = _reflectance_80m()
    patch = EOPatch(bbox=_bbox(500), timestamps=inputs.to_datetimes(times))
    patch[FeatureType.DATA, "BANDS"] = refl
    patch[FeatureType.MASK, "IS_DATA"] = has[..., None]
    task = CloudMaskTask(
        data_feature=(FeatureType.DATA, "BANDS"),
        valid_data_feature=(FeatureType.MASK, "IS_DATA"),
        output_mask_feature=(FeatureType.MASK, "CLM"),
        output_proba_feature=(FeatureType.DATA, "CLP"),
        threshold=0.4,
        average_over=2,
        dilation_size=1,
    )

    def run():
        return task.execute(patch)

    def save(result, out):
        np.save(os.path.join(out, "clouds_eolearn_mask80.npy"), result[FeatureType.MASK, "CLM"][..., 0])
        return {"input": checksum}

    return Case(run, save)


# ---------------------------------------------------------------- row 4


def chain_eopatch_path() -> str:
    return os.path.join(WORK, f"chain_eopatch_{CHAIN_SIZE}_{CHAIN_TIMES}_v2")


def save_chain_eopatch() -> str:
    """The raw stack as an EOPatch on disk (BANDS uint16 x 10000, IS_DATA), as eo-learn would ingest it."""
    from eolearn.core import EOPatch, FeatureType

    path = chain_eopatch_path()
    if os.path.exists(os.path.join(path, "bbox.geojson")):
        return path
    bands, is_data, times = inputs.raw_stack(CHAIN_SIZE, CHAIN_SIZE, CHAIN_TIMES, swath_edges=True)
    patch = EOPatch(bbox=_bbox(CHAIN_SIZE), timestamps=inputs.to_datetimes(times))
    patch[FeatureType.DATA, "BANDS"] = bands
    patch[FeatureType.MASK, "IS_DATA"] = is_data[..., None]
    tmp = tempfile.mkdtemp(dir=WORK)
    patch.save(tmp, overwrite_permission="OVERWRITE_FEATURES")
    os.replace(tmp, path)
    return path


def chain_workflow():
    """eo-learn's per-patch chain of the land-cover example: load, s2cloudless at 80 m (block mean down, nearest
    up), valid = data & not cloud, bands + NDVI/NDWI/NORM, drop frames under 80 % valid coverage, linear
    interpolation onto the 2017 16-day grid."""
    from eolearn.core import (
        EOTask,
        EOWorkflow,
        FeatureType,
        LoadTask,
        MapFeatureTask,
        MergeFeatureTask,
        OutputTask,
        ZipFeatureTask,
        linearly_connect_tasks,
    )
    from eolearn.features import NormalizedDifferenceIndexTask, SimpleFilterTask
    from eolearn.features.extra.interpolation import LinearInterpolationTask
    from eolearn.mask.extra.cloud_mask import CloudMaskTask

    D, M = FeatureType.DATA, FeatureType.MASK
    band_index = [inputs.L1C_BANDS.index(b) for b in inputs.FEATURE_BANDS]

    class DownsampleTask(EOTask):
        """80 m reflectance: block mean of the data pixels (the same arithmetic as ours)."""

        def execute(self, eopatch):
            refl, has = inputs.block_mean_80m(eopatch[D, "BANDS"], eopatch[M, "IS_DATA"][..., 0])
            eopatch[D, "BANDS_80"] = refl
            eopatch[M, "IS_DATA_80"] = has[..., None]
            return eopatch

    class UpsampleMaskTask(EOTask):
        """Nearest-neighbour 80 m -> 10 m: each pixel takes its block's mask, then masked by IS_DATA."""

        def execute(self, eopatch):
            clm = eopatch[M, "CLM_80"][..., 0]
            h, w = eopatch[M, "IS_DATA"].shape[1:3]
            up = np.repeat(np.repeat(clm, 8, axis=1), 8, axis=2)[:, :h, :w]
            eopatch[M, "CLM"] = (up & eopatch[M, "IS_DATA"][..., 0])[..., None]
            return eopatch

    def coverage_over(threshold):
        return lambda mask: mask.mean() > threshold

    tasks = [
        LoadTask(chain_eopatch_path()),
        DownsampleTask(),
        CloudMaskTask(
            data_feature=(D, "BANDS_80"),
            valid_data_feature=(M, "IS_DATA_80"),
            output_mask_feature=(M, "CLM_80"),
            threshold=0.4,
            average_over=2,
            dilation_size=1,
        ),
        UpsampleMaskTask(),
        ZipFeatureTask({M: ["IS_DATA", "CLM"]}, (M, "IS_VALID"), lambda data, clm: data & ~clm),
        MapFeatureTask((D, "BANDS"), (D, "REFL"), lambda x: x[..., band_index].astype(np.float32) / np.float32(10000)),
        NormalizedDifferenceIndexTask((D, "REFL"), (D, "NDVI"), (3, 2)),
        NormalizedDifferenceIndexTask((D, "REFL"), (D, "NDWI"), (1, 3)),
        MapFeatureTask((D, "REFL"), (D, "NORM"), lambda x: np.sqrt(np.sum(x * x, axis=-1, keepdims=True))),
        MergeFeatureTask({D: ["REFL", "NDVI", "NDWI", "NORM"]}, (D, "FEATURES")),
        SimpleFilterTask((M, "IS_VALID"), coverage_over(0.8), filter_features=[(D, "FEATURES"), (M, "IS_VALID")]),
        LinearInterpolationTask(
            (D, "FEATURES"),
            mask_feature=(M, "IS_VALID"),
            resample_range=(inputs.DATE_START, inputs.DATE_END, inputs.STEP_DAYS),
            parallel=True,
        ),
        OutputTask("features"),
    ]
    nodes = linearly_connect_tasks(*tasks)
    return EOWorkflow(nodes)


def chain() -> Case:
    save_chain_eopatch()
    workflow = chain_workflow()

    def run():
        results = workflow.execute({})
        if results.workflow_failed():  # pragma: no cover
            raise RuntimeError(str(results.stats[results.error_node_uid].exception_info))
        return results.outputs["features"]

    def save(result, out):
        from eolearn.core import FeatureType

        data = result[FeatureType.DATA, "FEATURES"]
        np.save(os.path.join(out, "chain_peer.npy"), data)
        return {"dtype": str(data.dtype), "shape": list(data.shape)}

    return Case(run, save)


# ---------------------------------------------------------------- row 5


def predict_lightgbm() -> Case:
    """LightGBM's own prediction of the whole 1000 x 1000 table: probabilities, then argmax."""
    import lightgbm as lgb

    model_txt, _ = inputs.model_paths()
    booster = lgb.Booster(model_file=model_txt)
    table = inputs.prediction_table()
    classes = inputs.CLASSES_8

    def run():
        proba = booster.predict(table)
        return classes[proba.argmax(axis=1)]

    def save(result, out):
        np.save(os.path.join(out, "predict_lightgbm.npy"), result)
        return {"trees": booster.num_trees()}

    return Case(run, save)


# ---------------------------------------------------------------- row 6


def train_lightgbm(n="100000") -> Case:
    """The eo-learn example's training step: read the samples, LGBMClassifier(objective="multiclass") fit on the
    feature matrix (LightGBM's defaults, as the example; 2 threads like ours)."""
    import lightgbm as lgb
    import pandas as pd

    paths = inputs.samples_tables(int(n))

    def run():
        table = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
        features = table.drop(columns=["tile_id", "row", "col", "label"]).to_numpy(dtype=np.float32)
        labels = table["label"].to_numpy()
        del table
        model = lgb.LGBMClassifier(objective="multiclass", n_jobs=2, random_state=42, verbosity=-1)
        return model.fit(features, labels)

    def save(result, out):
        return {"trees": result.booster_.num_trees(), "n": int(n)}

    return Case(run, save)


if __name__ == "__main__":
    main(
        {
            "interpolation": interpolation,
            "interpolation_real": interpolation_real,
            "erosion": erosion,
            "sampling": sampling,
            "s2cloudless": s2cloudless,
            "cloudmask_task": cloudmask_task,
            "chain": chain,
            "predict_lightgbm": predict_lightgbm,
            "train_lightgbm": train_lightgbm,
        }
    )
