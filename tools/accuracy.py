"""The real-data accuracy bench: the workflow's own functions on the eo-learn test patch, four half-splits.

`python -m tools.accuracy` (or `make accuracy`) cuts the real EOPatch (NDVI, its CLM, the LULC raster) into
halves as the workflow's `eopatch.subtiles` does, and for each of train left / test right, right / left,
top / bottom and bottom / top runs the chain the rules run: carried cloud masks, valid data and the scene filter per
tile (`landcover.features.tile_features`, each half read with the margin the spatial context reaches, from the
patch: the other half), the spatial context computed in sampling and prediction (`landcover.context`), erosion, sampling, training and tile prediction. Beside it, in the same run and on the same
frames, a plain baseline: LightGBM's defaults (`lightgbm.LGBMClassifier`) on the 23 interpolated NDVI dates of the
2017 16-day grid, trained on every eroded training pixel.

Scores (scikit-learn) are on every labelled test pixel first (the headline: a map is judged on all of its pixels,
boundaries included), then on the eroded interior (secondary). A pixel the map leaves as no data counts as wrong.
The report (Markdown, default docs/accuracy.md) also holds the ablation table (issue 11, section 5) and the
prediction-time check, and the README's block between `<!-- accuracy:start -->` and `<!-- accuracy:end -->` is
rewritten from it. Everything is seeded: the same command gives the same table (timings aside).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import lightgbm as lgb
import numpy as np
import xarray as xr
from sklearn.metrics import accuracy_score, f1_score

from landcover import stack
from landcover.classes import EOLEARN_CLASSES, NO_DATA
from landcover.clouds import carried_cloud_masks
from landcover.context import halo_pixels, majority_filter
from landcover.features import tile_features
from landcover.grid import crop_to_tile, tile_window, with_margin
from landcover.ingest.eopatch import read_eopatch, read_eopatch_reference
from landcover.interpolate import date_grid
from landcover.model import predict_tile, train_model
from landcover.reference import erode
from landcover.sampling import sample_pixels
from tools.readme import write_blocks

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
PATCH = REPO / "data" / "eolearn-testeopatch" / "TestEOPatch"
COMMAND = "make accuracy  # python -m tools.accuracy"
SEED = 42
# (name, sub-tile split [n_rows, n_cols], training half, test half); halves are (row, col) of the split
SPLITS = (
    ("train left, test right", (1, 2), (0, 0), (0, 1)),
    ("train right, test left", (1, 2), (0, 1), (0, 0)),
    ("train top, test bottom", (2, 1), (0, 0), (1, 0)),
    ("train bottom, test top", (2, 1), (1, 0), (0, 0)),
)
HALF_NAMES = {((1, 2), (0, 0)): "left", ((1, 2), (0, 1)): "right", ((2, 1), (0, 0)): "top", ((2, 1), (1, 0)): "bottom"}
CLASS_NAMES = {c.id: c.name for c in EOLEARN_CLASSES}


@dataclass(frozen=True)
class Settings:
    """One column of choices the bench compares: the workflow's config keys of the same names."""

    valid_coverage_threshold: float = 0.8
    cloud_masks: bool = True
    step_days: int | None = 16  # None: the 2017 acquisition dates both halves kept
    erosion_radius: int = 1
    temporal_stats: bool = False
    context_sigmas: tuple[float, ...] = ()
    class_weight: str | None = None
    tuning: dict | None = field(default=None, hash=False)
    majority_radius: int = 0
    rounds: int | None = None  # trees per class; None: LightGBM's 100

    def feature_key(self) -> tuple:
        return (self.valid_coverage_threshold, self.cloud_masks, self.step_days, halo_pixels(self.context_sigmas))


PLAIN = Settings()
TUNING = {"folds": 4, "block_px": 10, "max_rounds": 100, "early_stopping_rounds": 10, "num_leaves": [15, 31]}
# the schema's defaults (workflow/schemas/config.schema.yaml): the methods that won on this bench
WORKFLOW = Settings(temporal_stats=True, context_sigmas=(1.0, 3.0), class_weight="sqrt", rounds=60)


@dataclass
class Half:
    """One half of the patch as the workflow holds a tile: features, reference and eroded reference."""

    tile: str
    features: xr.Dataset
    labels: np.ndarray
    eroded: np.ndarray
    seconds: float


def _read_half(split: tuple[int, int], half: tuple[int, int], settings: Settings, dates) -> Half:
    tile = f"TestEOPatch_r{half[0]}_c{half[1]}"
    margin = halo_pixels(settings.context_sigmas)  # as the workflow's tiles: the context's reach
    ds = read_eopatch(PATCH, tile, subtile=(*half, *split), index_features=["NDVI"], margin_px=margin)
    clouds = carried_cloud_masks(ds)
    if not settings.cloud_masks:
        clouds["cloud_mask"][:] = False
    labels = read_eopatch_reference(PATCH, stack.grid_of(crop_to_tile(ds)))
    start = time.perf_counter()
    features = tile_features(
        ds,
        clouds,
        bands=[],
        indices=["NDVI"],
        dates=dates,
        valid_coverage_threshold=settings.valid_coverage_threshold,
        coverage_window=tile_window(ds),
    )
    features = with_margin(features, margin)
    return Half(tile, features, labels, erode(labels, settings.erosion_radius), time.perf_counter() - start)


def _acquisition_dates(halves: list[Half]) -> np.ndarray:
    kept = [set(h.features.attrs["kept_dates"].split(",")) for h in halves]
    days = sorted({d[:10] for d in set.intersection(*kept) if d.startswith("2017")})
    return np.asarray(days, dtype="datetime64[D]")


class Bench:
    """Per-tile features, computed once per split layout and feature settings, and the runs on them."""

    def __init__(self, threads: int = 2):
        self.threads = threads
        self._halves: dict = {}
        self._runs: dict = {}

    def halves(self, split: tuple[int, int], settings: Settings) -> dict[tuple[int, int], Half]:
        key = (split, settings.feature_key(), settings.erosion_radius)
        if key not in self._halves:
            cells = [(0, 0), (0, 1)] if split == (1, 2) else [(0, 0), (1, 0)]
            grid = date_grid("2017-01-01", "2017-12-31", settings.step_days or 16)
            halves = {cell: _read_half(split, cell, settings, grid) for cell in cells}
            if settings.step_days is None:
                grid = _acquisition_dates(list(halves.values()))
                halves = {cell: _read_half(split, cell, settings, grid) for cell in cells}
            self._halves[key] = halves
        return self._halves[key]

    def run(self, spec, settings: Settings) -> dict:
        """Train on one half, predict the other, score: the workflow's chain with `settings` (each run once)."""
        key = (spec, settings)
        if key not in self._runs:
            if settings.majority_radius:  # post-classification: the same model's map, filtered
                run = dict(self.run(spec, replace(settings, majority_radius=0)))
                test = self.halves(spec[1], settings)[spec[3]]
                run["predicted"] = majority_filter(run["predicted"], settings.majority_radius)
                run["all"], run["interior"] = (
                    scores(test.labels, run["predicted"]),
                    scores(test.eroded, run["predicted"]),
                )
                self._runs[key] = run
            else:
                self._runs[key] = self._run(spec, settings)
        return self._runs[key]

    def _run(self, spec, settings: Settings) -> dict:
        _, split, train_cell, test_cell = spec
        halves = self.halves(split, settings)
        train, test = halves[train_cell], halves[test_cell]
        samples = sample_pixels(
            train.eroded, train.features, train.tile, seed=SEED, max_samples=40000, sigmas=settings.context_sigmas
        )
        classes = tuple(c for c in EOLEARN_CLASSES if c.id != NO_DATA)
        booster, metadata = train_model(
            samples,
            classes,
            seed=SEED,
            params={},
            threads=self.threads,
            training_tiles=[train.tile],
            temporal_stats=settings.temporal_stats,
            class_weight=settings.class_weight,
            tuning=settings.tuning,
            rounds=settings.rounds,
        )
        predicted, _ = predict_tile(
            booster, metadata, test.features, threads=self.threads, sigmas=settings.context_sigmas
        )
        return {
            "predicted": predicted,
            "all": scores(test.labels, predicted),
            "interior": scores(test.eroded, predicted),
            "feature_seconds": test.seconds,
            "model_bytes": len(booster.model_to_string().encode()),
            "trees": booster.num_trees(),
            "booster": booster,
            "metadata": metadata,
            "test_ds": test.features,
        }

    def baseline(self, spec) -> dict:
        """Plain LightGBM (scikit-learn API, its defaults) on the 16-day NDVI series of the same frames."""
        _, split, train_cell, test_cell = spec
        halves = self.halves(split, PLAIN)
        train, test = halves[train_cell], halves[test_cell]

        def table(half: Half) -> np.ndarray:
            cube = half.features["features"].transpose("y", "x", "date", "feature").values
            return cube.reshape(half.labels.size, -1)

        x_train, y_train = table(train), train.eroded.ravel()
        keep = (y_train > 0) & np.isfinite(x_train).all(axis=1)
        classifier = lgb.LGBMClassifier(random_state=SEED, deterministic=True, n_jobs=self.threads, verbosity=-1)
        classifier.fit(x_train[keep], y_train[keep])
        x_test = table(test)
        predicted = np.zeros(test.labels.size, dtype=np.uint8)
        finite = np.isfinite(x_test).all(axis=1)
        predicted[finite] = classifier.predict(x_test[finite])
        predicted = predicted.reshape(test.labels.shape)
        return {"all": scores(test.labels, predicted), "interior": scores(test.eroded, predicted)}


def scores(reference: np.ndarray, predicted: np.ndarray) -> dict:
    """OA, weighted and macro F1, per-class F1 and the majority class's share on the labelled pixels of
    `reference` (scikit-learn; a no-data prediction is a wrong one)."""
    labelled = reference > 0
    y_true, y_pred = reference[labelled], predicted[labelled]
    present = np.unique(y_true)
    per_class = f1_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    return {
        "pixels": int(labelled.sum()),
        "oa": float(accuracy_score(y_true, y_pred)),
        "f1_weighted": float(f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": {int(c): float(f) for c, f in zip(present, per_class)},
        "majority": float(np.bincount(y_true).max() / len(y_true)),
    }


def _f(value: float) -> str:
    return f"{value:.3f}"


def _frames_table(bench: Bench) -> list[str]:
    """Which frames the scene filter kept in each half, and the frames kept on one side only."""
    lines = [
        "| split layout | half | frames kept of 68 (valid coverage > 0.8) | 2017 frames kept | kept here only |",
        "|---|---|---|---|---|",
    ]
    for split in ((1, 2), (2, 1)):
        halves = bench.halves(split, PLAIN)
        kept = {cell: set(h.features.attrs["kept_dates"].split(",")) for cell, h in halves.items()}
        for cell in halves:
            others = set.union(*(k for c, k in kept.items() if c != cell))
            only = sorted(d[:16] for d in kept[cell] - others if d.startswith("2017"))
            in_2017 = sum(d.startswith("2017") for d in kept[cell])
            lines.append(
                f"| {split[0]} x {split[1]} | {HALF_NAMES[(split, cell)]} | {len(kept[cell])} | {in_2017} | "
                f"{', '.join(only) or 'none'} |"
            )
    return lines


def _headline(results: list[tuple[str, dict, dict]], settings: Settings) -> list[str]:
    lines = [
        (
            "| split | test pixels | workflow OA | plain OA | workflow F1 weighted / macro | plain F1 weighted / macro "
            "| majority class share |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for name, ours, plain in results:
        a, p = ours["all"], plain["all"]
        lines.append(
            f"| {name} | {a['pixels']} | **{_f(a['oa'])}** | {_f(p['oa'])} | {_f(a['f1_weighted'])} / "
            f"{_f(a['f1_macro'])} | {_f(p['f1_weighted'])} / {_f(p['f1_macro'])} | {_f(a['majority'])} |"
        )
    mean_ours = np.mean([r[1]["all"]["oa"] for r in results])
    mean_plain = np.mean([r[2]["all"]["oa"] for r in results])
    lines.append(f"| **mean** | | **{_f(mean_ours)}** | {_f(mean_plain)} | | | |")
    return lines


def _interior(results) -> list[str]:
    lines = [
        "| split | interior test pixels | workflow OA | plain OA | workflow F1 weighted / macro | majority class share |",
        "|---|---|---|---|---|---|",
    ]
    for name, ours, plain in results:
        a, p = ours["interior"], plain["interior"]
        lines.append(
            f"| {name} | {a['pixels']} | {_f(a['oa'])} | {_f(p['oa'])} | {_f(a['f1_weighted'])} / "
            f"{_f(a['f1_macro'])} | {_f(a['majority'])} |"
        )
    return lines


def _per_class(results) -> list[str]:
    classes = sorted({c for _, ours, _ in results for c in ours["all"]["per_class"]})
    lines = [
        "| split | " + " | ".join(f"{CLASS_NAMES[c]} (workflow / plain)" for c in classes) + " |",
        "|---|" + "---|" * len(classes),
    ]
    for name, ours, plain in results:
        cells = []
        for c in classes:
            if c in ours["all"]["per_class"]:
                cells.append(f"{_f(ours['all']['per_class'][c])} / {_f(plain['all']['per_class'][c])}")
            else:
                cells.append("-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def describe(settings: Settings) -> str:
    parts = []
    if settings.temporal_stats:
        parts.append("temporal statistics")
    if settings.context_sigmas:
        parts.append("spatial context sigma " + ", ".join(f"{s:g}" for s in settings.context_sigmas) + " px")
    if settings.class_weight:
        parts.append(f"class weights {settings.class_weight}")
    if settings.tuning:
        parts.append("spatial-CV tuning")
    if settings.majority_radius:
        parts.append(f"majority filter r={settings.majority_radius}")
    if settings.rounds:
        parts.append(f"{settings.rounds} rounds")
    return ", ".join(parts) or "no method"


def ablation_rows(workflow: Settings) -> list[tuple[str, Settings]]:
    """Section 5: the plain chain with one choice changed, each method alone, and the workflow less each method."""
    rows = [
        ("plain (workflow, every method off)", PLAIN),
        ("plain, scene filter off", replace(PLAIN, valid_coverage_threshold=0.0)),
        ("plain, no cloud masks in the interpolation", replace(PLAIN, cloud_masks=False)),
        ("plain, 8-day grid", replace(PLAIN, step_days=8)),
        ("plain, the 2017 acquisition dates both halves kept", replace(PLAIN, step_days=None)),
        ("plain + temporal statistics", replace(PLAIN, temporal_stats=True)),
        ("plain + spatial context", replace(PLAIN, context_sigmas=workflow.context_sigmas or (1.0, 3.0))),
        ("plain + class weights (sqrt)", replace(PLAIN, class_weight="sqrt")),
        ("plain + spatial-CV tuning", replace(PLAIN, tuning=TUNING)),
        (f"workflow ({describe(workflow)})", workflow),
    ]
    if workflow.temporal_stats:
        rows.append(("workflow without temporal statistics", replace(workflow, temporal_stats=False)))
    if workflow.context_sigmas:
        rows.append(("workflow without spatial context", replace(workflow, context_sigmas=())))
    if workflow.tuning:
        rows.append(("workflow without spatial-CV tuning", replace(workflow, tuning=None)))
    if workflow.class_weight:
        rows.append(("workflow without class weights", replace(workflow, class_weight=None)))
    if workflow.rounds:
        rows.append(("workflow with LightGBM's 100 rounds", replace(workflow, rounds=None)))
    rows.append(
        ("workflow + majority filter r=1 (post-classification, separate)", replace(workflow, majority_radius=1))
    )
    rows.append(
        ("workflow + majority filter r=2 (post-classification, separate)", replace(workflow, majority_radius=2))
    )
    return rows


def _ablation(bench: Bench, workflow: Settings, plain_oa: list[float]) -> list[str]:
    lines = [
        (
            "| variant | OA per split (all labelled pixels) | mean OA | vs plain baseline (min, mean) | interior mean OA "
            "| feature s per half | model kB | trees |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, settings in ablation_rows(workflow):
        runs = [bench.run(spec, settings) for spec in SPLITS]
        oa = [r["all"]["oa"] for r in runs]
        gain = np.subtract(oa, plain_oa)
        log.info("ablation %s: %s", name, oa)
        lines.append(
            f"| {name} | {' / '.join(_f(v) for v in oa)} | {_f(np.mean(oa))} | {gain.min():+.3f}, {gain.mean():+.3f} "
            f"| {_f(np.mean([r['interior']['oa'] for r in runs]))} "
            f"| {np.mean([r['feature_seconds'] for r in runs]):.2f} "
            f"| {np.mean([r['model_bytes'] for r in runs]) / 1000:.0f} | {np.mean([r['trees'] for r in runs]):.0f} |"
        )
    return lines


def predict_timing(bench: Bench, workflow: Settings, size: int = 1000, repeats: int = 1) -> list[str]:
    """Seconds to predict a size x size tile (the real half's features tiled to size, written as the workflow
    writes them, read back lazily) with the plain model and with the workflow's: same machine, same run. Timed in
    CPU seconds of this process (all threads), which other jobs on a busy machine do not inflate."""
    lines = [
        f"| model | features per pixel | trees | predict CPU s (median of {repeats}) | wall s |",
        "|---|---|---|---|---|",
    ]
    timings = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, settings in (("plain", PLAIN), ("workflow", workflow)):
            run = bench.run(SPLITS[0], settings)
            ds = run["test_ds"]
            side = size + 2 * halo_pixels(settings.context_sigmas)  # the tile and its margin
            reps = (-(-side // ds.sizes["y"]), -(-side // ds.sizes["x"]))
            values = np.tile(ds["features"].values, (1, *reps, 1))[:, :side, :side]
            counts = np.tile(ds["valid_count"].values, reps)[:side, :side]
            grid = replace(stack.grid_of(ds), height=side, width=side)
            big = stack.with_grid(xr.Dataset(coords={"date": ds["date"].values, "feature": ds["feature"].values}), grid)
            big = big.assign(features=(("date", "y", "x", "feature"), values), valid_count=(("y", "x"), counts))
            big = with_margin(big, halo_pixels(settings.context_sigmas))
            path = Path(folder) / f"{name}.nc"
            stack.write(big, path)
            del big, values
            seconds, wall = [], []
            for _ in range(repeats):
                with stack.open(path) as lazy:
                    start, start_wall = time.process_time(), time.perf_counter()
                    predict_tile(run["booster"], run["metadata"], lazy, threads=2, sigmas=settings.context_sigmas)
                    seconds.append(time.process_time() - start)
                    wall.append(time.perf_counter() - start_wall)
            timings[name] = float(np.median(seconds))
            lines.append(
                f"| {name} | {len(run['metadata']['feature_names'])} | {run['trees']} | {timings[name]:.2f} "
                f"| {np.median(wall):.2f} |"
            )
    ratio = timings["workflow"] / timings["plain"]
    lines.append("")
    lines.append(f"Workflow / plain prediction CPU time: **{ratio:.2f}x** (limit 1.25x).")
    return lines


def report(bench: Bench, workflow: Settings, ablation: bool = True, timing: bool = True) -> tuple[str, str]:
    """(docs page, README block) in Markdown."""
    results = [(spec[0], bench.run(spec, workflow), bench.baseline(spec)) for spec in SPLITS]
    plain_oa = [r[2]["all"]["oa"] for r in results]
    headline = _headline(results, workflow)
    page = [
        "# Accuracy on real data",
        "",
        f"Generated by `{COMMAND}`; do not edit by hand. Source: `tools/accuracy.py`.",
        "",
        (
            "The eo-learn test EOPatch (`data/eolearn-testeopatch`: 1 km2 in Slovenia, NDVI of 68 L1C acquisitions "
            "2015-2017, its s2cloudless CLM, the LULC reference raster), cut into halves as `eopatch.subtiles` does. "
            "Each split trains on one half and predicts the other with the workflow's own functions "
            f"(workflow settings: {describe(workflow)}; 2017 16-day grid, 23 dates; erosion radius 1; seed {SEED}). "
            "The plain baseline is `lightgbm.LGBMClassifier()` with its defaults on the 23 interpolated NDVI dates, "
            "trained on every eroded training pixel, computed in the same run on the same frames."
        ),
        "",
        "## All labelled test pixels (headline)",
        "",
        *headline,
        "",
        "## Eroded interior test pixels (secondary: boundaries left out)",
        "",
        *_interior(results),
        "",
        "## Per-class F1, all labelled test pixels",
        "",
        *_per_class(results),
        "",
        "## Frames the scene filter kept",
        "",
        (
            "Each half is filtered on its own, as the workflow filters each tile; the baseline uses the same frames "
            "(the same features), so a difference between halves is shared by both columns."
        ),
        "",
        *_frames_table(bench),
    ]
    if timing:
        page += [
            "",
            "## Prediction time of a 1000 x 1000 tile",
            "",
            (
                "The test half's features tiled to 1000 x 1000 px, written and read back as the workflow does, "
                "predicted with `landcover.model.predict_tile` (2 threads) by the plain model and the workflow's; "
                "same machine, same run (the workflow's spatial context computed block by block inside the "
                "prediction, as the predict rule does)."
            ),
            "",
            *predict_timing(bench, workflow),
        ]
    if ablation:
        page += [
            "",
            "## Ablation (issue 11, section 5)",
            "",
            (
                "OA on all labelled test pixels of the four splits (train left/test right, right/left, top/bottom, "
                "bottom/top); 'vs plain baseline' is the difference to the baseline above, split by split. Feature "
                "time: interpolation of one half, mean (the context is computed in sampling and prediction); model size: LightGBM's model text."
            ),
            "",
            *_ablation(bench, workflow, plain_oa),
        ]
    block = [
        (
            f"Real data (`{COMMAND}`, full tables in [docs/accuracy.md](docs/accuracy.md)): the eo-learn test EOPatch, "
            "trained on one half and tested on the other, overall accuracy on all labelled test pixels, the "
            "workflow beside a plain LightGBM computed in the same run:"
        ),
        "",
        *headline,
    ]
    return "\n".join(page) + "\n", "\n".join(block) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.accuracy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(REPO / "docs" / "accuracy.md"))
    parser.add_argument("--readme", default=str(REPO / "README.md"), help="rewrite its accuracy block ('' : no)")
    parser.add_argument("--no-ablation", action="store_true", help="leave out the ablation table (faster)")
    parser.add_argument("--no-timing", action="store_true", help="leave out the prediction-time check")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("landcover.features", "landcover.model", "landcover.context", "landcover.ingest.eopatch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    page, block = report(Bench(args.threads), WORKFLOW, ablation=not args.no_ablation, timing=not args.no_timing)
    Path(args.output).write_text(page)
    if args.readme:
        write_blocks(args.readme, {"accuracy": block})
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
