"""The synthetic area's calibration (issue 20, section 3): `python -m tools.calibration`.

Draws the default area's tiles (config/config.yaml over the schema's defaults) and runs, in this process, the chain
the workflow's rules run with the plain method (`plain`: no temporal statistics, no spatial context, no class
weights, LightGBM's 100 rounds; tests/test_accuracy.py runs the same through Snakemake): s2cloudless masks (`landcover.clouds`), interpolated features
(`landcover.features`), the register rasterised and eroded (`landcover.reference`), samples (`landcover.sampling`),
the model and its maps (`landcover.model`), scored against the generator's truth as the `score_truth` rule does.

It prints the values the area is calibrated on, each with its band (truth OA on all pixels of the test tiles,
interior minus all, the largest class share, the whole series against the best single date), and the class means
of interpolated NDVI in summer and in February beside the ones measured on the real patch. tests/test_accuracy.py
asserts the printed values. Deterministic: the same checkout prints the same values.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from landcover import resources, stack
from landcover.classes import NO_DATA, classes_from_config
from landcover.clouds import cloud_masks
from landcover.config import margin_px
from landcover.features import tile_features
from landcover.grid import crop_to_tile, tile_grid, tile_window, with_margin
from landcover.maps import write_class_geotiff
from landcover.model import TrainingSet, predict_tile, train_model
from landcover.reference import erode, rasterize_reference
from landcover.report.metrics import score_against_truth
from landcover.sampling import ID_COLUMNS, sample_pixels
from landcover.split import split_tiles
from landcover.synthetic import synthesize_reference, synthesize_tile
from landcover.synthetic.calibration import interior_and_shares

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
COMMAND = "python -m tools.calibration"
SYNTHETIC_CRS = "EPSG:32633"  # as workflow/rules/common.smk places the synthetic area
# The bands for the plain method on all pixels of the test tiles.
BANDS = {
    "truth_oa": (0.85, 0.92),
    "interior_gap": (0.03, 0.08),
    "largest_class_share": (0.0, 0.60),
    "series_gain": (0.04, 1.0),
}
# Class means of interpolated NDVI on the real patch (../shared/FACTS.md: 2017, 16-day grid, all labelled pixels).
REAL_NDVI = {
    "summer": "forest, grassland and shrubland 0.64-0.71, within 0.01-0.07 of each other; artificial surface ~0.55",
    "February": "every class near 0.2 (snow)",
}
SUMMER_MONTHS, FEBRUARY = (6, 7, 8), (2,)


def default_config() -> dict:
    """config/config.yaml with the schema's defaults filled in, as the workflow sees it."""
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return copy.deepcopy(config)


def plain(config: dict) -> dict:
    """The plain eo-learn method: no temporal statistics, no spatial context, no class weights, 100 rounds."""
    config["features"].update(temporal_stats=False, context_sigmas=[])
    config["model"].update(class_weight=None, rounds=100)
    return config


def area_tiles(config: dict) -> list[str]:
    """The synthetic grid's tile ids, as workflow/rules/common.smk lists them."""
    from shapely.geometry import box

    from landcover.grid import make_grid

    syn, size = config["synthetic"], config["area"]["tile_size_m"]
    minx, miny = syn["origin"][0] // size * size, syn["origin"][1] // size * size
    aoi = box(minx, miny, minx + syn["tiles_x"] * size, miny + syn["tiles_y"] * size)
    crs = config["area"]["crs"] or SYNTHETIC_CRS
    return list(make_grid(aoi, size, config["area"]["resolution_m"], crs=crs).tile_id)


@dataclass
class Tile:
    """What the chain keeps of a tile: its features, the truth, the rasterised reference and the sampled pixels."""

    grid: object
    features: xr.Dataset
    truth: np.ndarray
    labels: np.ndarray
    samples: pd.DataFrame


def prepare_tile(tile_id: str, config: dict, threads: int, sampling: dict, folder: Path) -> Tile:
    """One tile through the rules before training: synthesize (the tile and its margin, `margin_px`), cloud_mask,
    features (stored and read back as the features rule writes them, in `folder`), reference, sample with the sample
    rule's `sampling` settings."""
    area, syn = config["area"], config["synthetic"]
    crs, margin = area["crs"] or SYNTHETIC_CRS, margin_px(config)
    grid = tile_grid(tile_id, area["tile_size_m"], area["resolution_m"], crs)
    drawn = tile_grid(tile_id, area["tile_size_m"], area["resolution_m"], crs, margin)
    raw, truth = synthesize_tile(drawn, int(syn["seed"]), year=int(syn["year"]), acquisitions=int(syn["acquisitions"]))
    raw, truth = with_margin(raw, margin), crop_to_tile(with_margin(truth, margin))
    clouds = cloud_masks(raw, threads=threads, **config["clouds"])
    features = tile_features(
        raw,
        clouds,
        bands=config["features"]["bands"],
        indices=config["features"]["indices"],
        dates=config["dates"],
        valid_coverage_threshold=config["valid_coverage_threshold"],
        workers=threads,
        coverage_window=tile_window(raw),
    )
    features = with_margin(features, margin)
    stored = folder / f"{tile_id}.nc"
    stack.write(features, stored)
    with stack.open(stored) as read_back:
        features = read_back.load()
    reference = config["reference"]
    polygons = synthesize_reference([grid], int(syn["seed"]))
    class_ids = [c["id"] for c in config["classes"]]
    labels = rasterize_reference(polygons, grid, reference["class_attribute"], class_ids)
    eroded = erode(labels, reference["erosion_radius"])
    samples = sample_pixels(eroded, features, tile_id, **sampling, sigmas=config["features"]["context_sigmas"])
    return Tile(grid, features, truth["land_cover"].values, labels, samples)


def _score(maps: dict[str, np.ndarray], tiles: dict[str, Tile], config: dict, folder: Path) -> dict:
    """The `score_truth` rule's figures, from maps and truth written as the workflow writes them."""
    classes = classes_from_config(config["classes"])
    map_paths, truth_paths = [], []
    for tile_id, labels in maps.items():
        grid = tiles[tile_id].grid
        map_paths.append(folder / f"{tile_id}.tif")
        truth_paths.append(folder / f"{tile_id}.nc")
        write_class_geotiff(map_paths[-1], labels, grid, classes)
        truth = xr.Dataset({"land_cover": (("y", "x"), tiles[tile_id].truth)})
        stack.write(stack.with_grid(truth, grid), truth_paths[-1])
    scores = score_against_truth(map_paths, truth_paths)
    scores.update(interior_and_shares(map_paths, truth_paths, config["reference"]["erosion_radius"]))
    scores["interior_gap"] = scores["interior"]["overall_accuracy"] - scores["overall_accuracy"]
    return scores


def truth_accuracy(maps: dict[str, np.ndarray], truths: dict[str, np.ndarray]) -> float:
    """Accuracy on every pixel the maps label, against the truth (as `score_against_truth` counts it)."""
    correct = scored = 0
    for tile_id, labels in maps.items():
        truth = truths[tile_id]
        inside = (labels != NO_DATA) & (truth != NO_DATA)
        correct += int((labels[inside] == truth[inside]).sum())
        scored += int(inside.sum())
    return correct / scored


def single_date_accuracies(
    train: pd.DataFrame, test_features: dict[str, xr.Dataset], truths: dict[str, np.ndarray], config: dict, threads: int
) -> dict[str, float]:
    """The plain model trained on one date's features alone, for each date: its accuracy on every pixel of the
    test tiles against the truth."""
    classes = classes_from_config(config["classes"])
    model = config["model"]
    dates = [str(d) for d in np.datetime_as_string(next(iter(test_features.values()))["date"].values, unit="D")]
    out = {}
    for k, date in enumerate(dates):
        columns = [*ID_COLUMNS, *(c for c in train.columns if c.endswith(f"_{date}"))]
        booster, metadata = train_model(
            TrainingSet.from_table(train[columns]),
            classes,
            seed=model["seed"],
            params=dict(model["params"] or {}),
            threads=threads,
            rounds=model["rounds"],
        )
        maps = {
            tile_id: predict_tile(booster, metadata, features.isel(date=[k]), threads=threads)[0]
            for tile_id, features in test_features.items()
        }
        out[date] = truth_accuracy(maps, truths)
        log.info("single date %s: %.4f", date, out[date])
    return out


def class_recall(maps: dict[str, np.ndarray], truths: dict[str, np.ndarray]) -> dict[int, tuple[float, int]]:
    """Each true class's share of pixels the map gets right, and the class it most often takes it for."""
    cm = np.zeros((256, 256), dtype=np.int64)
    for tile_id, labels in maps.items():
        truth = truths[tile_id]
        inside = (labels != NO_DATA) & (truth != NO_DATA)
        cm += np.bincount(truth[inside].astype(np.int64) * 256 + labels[inside], minlength=256 * 256).reshape(256, 256)
    out = {}
    for c in np.flatnonzero(cm.sum(axis=1)):
        wrong = cm[c].copy()
        wrong[c] = 0
        out[int(c)] = (float(cm[c, c] / cm[c].sum()), int(wrong.argmax()))
    return out


def ndvi_class_means(tiles: dict[str, Tile], months) -> dict[int, float]:
    """Mean interpolated NDVI of each true class over the grid dates in `months`, all pixels of all tiles."""
    sums, counts = np.zeros(256), np.zeros(256)
    for tile in tiles.values():
        features = tile.features
        chosen = np.isin(features["date"].dt.month.values, months)
        ndvi = features["features"].sel(feature="NDVI").transpose("date", "y", "x").values[chosen].mean(axis=0)
        valid = (tile.features["valid_count"].values > 0) & (tile.truth != NO_DATA) & np.isfinite(ndvi)
        sums += np.bincount(tile.truth[valid], weights=ndvi[valid], minlength=256)
        counts += np.bincount(tile.truth[valid], minlength=256)
    return {int(c): float(sums[c] / counts[c]) for c in np.flatnonzero(counts)}


def calibrate(config: dict, threads: int = 2, single_dates: bool = True) -> dict:
    """Every calibration value of the area `config` describes, with the plain method."""
    config = plain(copy.deepcopy(config))
    all_tiles = area_tiles(config)
    train_ids, test_ids = split_tiles(
        all_tiles, config["split"]["test_tiles"], config["split"]["test_fraction"], config["split"]["seed"]
    )
    area = config["area"]
    pixels = (area["tile_size_m"] / area["resolution_m"]) ** 2
    table = resources.load_table(REPO / "workflow" / "resources.yaml")
    sampling = resources.sample_params(config, table["train"], len(train_ids), pixels)
    tiles = {}
    with tempfile.TemporaryDirectory() as folder:
        for tile_id in sorted(all_tiles):
            log.info("tile %s", tile_id)
            tiles[tile_id] = prepare_tile(tile_id, config, threads, sampling, Path(folder))
    train = pd.concat([tiles[t].samples for t in train_ids], ignore_index=True)
    model = config["model"]
    booster, metadata = train_model(
        TrainingSet.from_table(train),
        classes_from_config(config["classes"]),
        seed=model["seed"],
        params=dict(model["params"] or {}),
        threads=threads,
        training_tiles=train_ids,
        temporal_stats=False,
        class_weight=None,
        rounds=model["rounds"],
    )
    maps = {t: predict_tile(booster, metadata, tiles[t].features, threads=threads)[0] for t in test_ids}
    with tempfile.TemporaryDirectory() as folder:
        scores = _score(maps, tiles, config, Path(folder))
    values = {
        "recall": class_recall(maps, {t: tiles[t].truth for t in test_ids}),
        "truth_oa": scores["overall_accuracy"],
        "interior_oa": scores["interior"]["overall_accuracy"],
        "interior_gap": scores["interior_gap"],
        "largest_class_share": max(scores["true_class_shares"].values()),
        "true_class_shares": scores["true_class_shares"],
        "ndvi_summer": ndvi_class_means(tiles, SUMMER_MONTHS),
        "ndvi_february": ndvi_class_means(tiles, FEBRUARY),
    }
    log.info(
        "truth OA %.4f, interior gap %.4f, recall %s", values["truth_oa"], values["interior_gap"], values["recall"]
    )
    if single_dates:
        truths = {t: tiles[t].truth for t in test_ids}
        singles = single_date_accuracies(train, {t: tiles[t].features for t in test_ids}, truths, config, threads)
        best = max(singles, key=singles.get)
        values.update(single_dates=singles, best_date=best, best_single_oa=singles[best])
        values["series_gain"] = values["truth_oa"] - singles[best]
    return values


def report(values: dict, names: dict[int, str]) -> str:
    lines = [f"Calibration of the default synthetic area, plain method ({COMMAND}):"]
    for key, (low, high) in BANDS.items():
        if key in values:
            ok = "ok" if low <= values[key] <= high else "OUT OF BAND"
            lines.append(f"  {key:<22} {values[key]:.4f}   band {low:.2f}-{high:.2f}  {ok}")
    lines.append(f"  {'interior_oa':<22} {values['interior_oa']:.4f}")
    if "best_date" in values:
        lines.append(f"  {'best_single_oa':<22} {values['best_single_oa']:.4f}   ({values['best_date']})")
        lines.append(
            "  single dates: " + ", ".join(f"{d[5:]} {v:.3f}" for d, v in sorted(values["single_dates"].items()))
        )
    lines.append(
        "  recall (mostly taken for): "
        + ", ".join(f"{names[c]} {r:.2f} ({names.get(w, w)})" for c, (r, w) in values["recall"].items())
    )
    shares = values["true_class_shares"]
    lines.append("  true class shares: " + ", ".join(f"{names.get(int(c), c)} {s:.3f}" for c, s in shares.items()))
    for season, key in (("summer", "ndvi_summer"), ("February", "ndvi_february")):
        means = values[key]
        lines.append(f"  NDVI class means, {season}: " + ", ".join(f"{names[c]} {v:.2f}" for c, v in means.items()))
        lines.append(f"    real patch: {REAL_NDVI[season]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-single-dates", action="store_true", help="skip the single-date models (faster)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = default_config()
    names = {c["id"]: c["name"] for c in config["classes"]}
    values = calibrate(config, threads=args.threads, single_dates=not args.no_single_dates)
    print(report(values, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
