"""The selection of the workflow's default methods (issue 20, section 1): `python -m tools.selection`.

The schema's defaults (features.temporal_stats, features.context_sigmas, model.class_weight, model.rounds) must be
chosen without the pixels any test or document reports on. So they are chosen here on synthetic areas drawn with
seeds (`SEEDS`) that no test or report uses (those use the demo's `synthetic.seed`, 2017), never on the real patch.
Each area is one tile of the demo's config drawn by the chain the rules run (`tools.calibration.prepare_tile`:
synthesize with the margin the context needs, s2cloudless masks, features stored and read back, the register
rasterised and eroded, the sample rule's settings from `landcover.resources.sample_params`).

The grid, the spatial block cross-validation, the paired block bootstrap and the rule are those of
`tools.accuracy` (`grid_settings`, `Bench.cross_validate`, `paired_interval`, `select`, `cost`): every configuration
is scored by out-of-fold OA on every labelled pixel of each area against the reference (mean over the seeds), and
the cheapest one whose 95 % interval of CV OA minus the best's reaches zero is chosen. The command prints the
table and writes docs/selection.md, which docs/accuracy.md links. Deterministic: the same checkout prints the same
table (timings aside).
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
from pathlib import Path

import yaml

from landcover import resources
from landcover.atomic import atomic_path
from landcover.classes import classes_from_config
from landcover.context import halo_pixels
from landcover.model import train_model
from landcover.reference import erode
from landcover.sampling import sample_pixels
from tools.accuracy import (
    GRIDS,
    SCHEMA,
    SELECTION_COMMAND,
    WORKFLOW,
    Bench,
    Half,
    Selection,
    _describe_grid,
    _f,
    _interval,
    cost,
    describe,
    grid_settings,
    select,
)
from tools.calibration import area_tiles, default_config, prepare_tile

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
COMMAND = SELECTION_COMMAND
SEEDS = (101, 102, 103)  # none of them is the demo's synthetic.seed (2017), which the tests and docs report on
TILE_SIZE_M = 600  # one 60 x 60 px tile per seed: the whole selection in about 10 minutes on 2 idle cores
AREA = "area"  # the one cell of each seed's "split": the whole area is cross-validated


def reported_seeds() -> set[int]:
    """The synthetic seeds whose areas the tests and docs report on: the demo's config and the schema's default."""
    schema = yaml.safe_load(SCHEMA.read_text())["properties"]["synthetic"]["properties"]
    return {int(default_config()["synthetic"]["seed"]), int(schema["seed"]["default"])}


class SyntheticBench(Bench):
    """The accuracy bench's cross-validation (`Bench.cross_validate`) on one synthetic area per seed: a spec is
    (name, seed, AREA, None), and the area plays the training half."""

    def __init__(self, seeds=SEEDS, tile_size_m: float = TILE_SIZE_M, acquisitions: int | None = None, **options):
        super().__init__(**options)
        self.seeds = tuple(seeds)
        config = default_config()
        sigmas = max((c.context_sigmas for c in grid_settings(self.grid)), key=len)
        config["features"]["context_sigmas"] = list(sigmas)  # drawn with the margin the widest context reads
        config["area"]["tile_size_m"] = tile_size_m
        config["synthetic"].update(
            tiles_x=1, tiles_y=1, acquisitions=acquisitions or config["synthetic"]["acquisitions"]
        )
        self.config = config
        pixels = (tile_size_m / config["area"]["resolution_m"]) ** 2
        train = resources.load_table(REPO / "workflow" / "resources.yaml")["train"]
        self.sampling = resources.sample_params(config, train, 1, pixels)

    def specs(self) -> list[tuple]:
        return [(f"seed {seed}", seed, AREA, None) for seed in self.seeds]

    def halves(self, split, settings) -> dict:
        """The area of seed `split`, the same for every settings (its margin covers the widest context)."""
        if split not in self._halves:
            config = copy.deepcopy(self.config)
            config["synthetic"]["seed"] = split
            (tile_id,) = area_tiles(config)
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as folder:
                tile = prepare_tile(tile_id, config, self.threads, self.sampling, Path(folder))
            radius = config["reference"]["erosion_radius"]
            half = Half(tile_id, tile.features, tile.labels, erode(tile.labels, radius), time.perf_counter() - start)
            self._halves[split] = {AREA: half}
            log.info("seed %s: area %s drawn in %.0f s", split, tile_id, half.seconds)
        return self._halves[split]

    def _fit(self, train: Half, train_ds, labels, settings, rounds: int):
        """As the sample and train rules: the sample rule's settings, the config's classes, seed and parameters."""
        samples = sample_pixels(labels, train_ds, train.tile, **self.sampling, sigmas=settings.context_sigmas)
        model = self.config["model"]
        return train_model(
            samples,
            classes_from_config(self.config["classes"]),
            seed=model["seed"],
            params=dict(model["params"] or {}),
            threads=self.threads,
            training_tiles=[train.tile],
            temporal_stats=settings.temporal_stats,
            class_weight=settings.class_weight,
            rounds=rounds,
        )


def table(selection: Selection) -> list[str]:
    """Every configuration, cheapest first, losers included."""
    lines = [
        "| configuration | model columns (country) | trees | CV OA (mean of the seeds) | CV - best [95 %] |",
        "|---|---|---|---|---|",
    ]
    for settings in sorted(selection.cv_oa, key=lambda c: (*cost(c), -selection.cv_oa[c])):
        marks = [
            label
            for label, match in (("chosen", selection.chosen), ("best by CV", selection.best), ("defaults", WORKFLOW))
            if settings == match
        ]
        name = describe(settings) + (f" (**{', '.join(marks)}**)" if marks else "")
        columns, trees = cost(settings)
        lines.append(
            f"| {name} | {columns} | {trees} | {_f(selection.cv_oa[settings])} "
            f"| {_interval(*selection.versus_best[settings])} |"
        )
    return lines


def report(bench: SyntheticBench, selection: Selection, seconds: float) -> str:
    """docs/selection.md in Markdown."""
    side = round(bench.config["area"]["tile_size_m"] / bench.config["area"]["resolution_m"])
    halo = halo_pixels(bench.config["features"]["context_sigmas"])
    near_edge = 1 - ((side - 2 * halo) / side) ** 2
    agrees = selection.chosen == WORKFLOW
    lines = [
        "# Selection of the default methods",
        "",
        f"Generated by `{COMMAND}`; do not edit by hand. Source: `tools/selection.py`.",
        "",
        (
            f"Areas: the synthetic source, one {side} x {side} px tile (10 m) of the demo's config for each of the "
            f"seeds {', '.join(str(s) for s in bench.seeds)}; the tests and docs report on seed "
            f"{', '.join(str(s) for s in sorted(reported_seeds()))} and on the real patch, which the selection never "
            f"reads. Each of the {len(grid_settings(bench.grid))} configurations of the grid "
            f"({_describe_grid(bench.grid)}) is scored by spatial block cross-validation of each area "
            f"(`tools.accuracy`'s: blocks of {bench.block_px} x {bench.block_px} px dealt to {bench.folds} folds, "
            "every labelled pixel of the out-of-fold map scored against the reference, the context computed without "
            "a halo); CV OA is the mean over the seeds. **Rule:** the cheapest configuration (fewest model columns "
            "at country scale, then fewest trees, then the higher CV OA) whose 95 % interval of CV OA minus the "
            f"best's reaches zero (paired bootstrap of {bench.block_px} x {bench.block_px} px blocks, "
            f"{bench.replicates} replicates, each seed's blocks drawn on their own and the differences averaged)."
        ),
        "",
        (
            f"Caveat of small areas: the spatial context reaches {halo} px and has no halo here, so on "
            f"{near_edge:.0%} of each area's pixels (those within {halo} px of its edge) it sees less than inside a "
            "workflow tile; the context's rows are judged at a disadvantage."
        ),
        "",
        (
            f"**Chosen:** {describe(selection.chosen)} (best by CV: {describe(selection.best)}). The schema's "
            f"defaults ({describe(WORKFLOW)}) {'are' if agrees else 'are NOT'} this choice. "
            f"Run time: {seconds / 60:.1f} min."
        ),
        "",
        *table(selection),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(REPO / "docs" / "selection.md"))
    parser.add_argument("--threads", type=int, default=2, help="threads of the cloud masks, features and LightGBM")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="small", help="the selection's grid (full: slower)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("landcover.features", "landcover.model", "landcover.context", "landcover.clouds"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    start = time.perf_counter()
    bench = SyntheticBench(threads=args.threads, grid=args.grid)
    selection = select(bench, bench.specs(), grid_settings(bench.grid))
    page = report(bench, selection, time.perf_counter() - start)
    with atomic_path(args.output) as tmp:
        tmp.write_text(page)
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
