"""odc-stac's `odc.stac.load` against landcover.ingest.stac on the STAC stand-in (tests/stac_standin.py).

The same items (7 dates, processing baselines 05.09, 04.00 and 02.14 in turn) and tile grids (the 4 tiny tiles):
- pixels: the stored bands (reflectance x 10000 after each item's offset) and the data mask, compared array by array;
  and one day as two granules of different processing baselines, each loader against the synthetic truth;
- faults, one COG each: truncated, absent (404), refused (403), failing (500) and failing once (a passing 500);
- time: every tile read afresh (a new server, so no cache of GDAL's is warm), median of the repeats.

odc-stac is not a dependency of the project: `pip install -c requirements.lock.txt odc-stac` into the venv first.
Run from the repository root: `.venv/bin/python benchmarks/stac_loader.py [--repeats 3]`. Prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import tiny_config
from stac_standin import COLLECTION, mosaic, stac_standin, write_catalogue, write_item
from synthetic_products import synthesize_area, tiny_grids

from landcover.ingest import stac as stac_source
from landcover.stack import REFLECTANCE_SCALE

FRAMES = list(range(0, 70, 10))
BANDS = ["B02", "B04", "B08", "B11"]
YEAR = ["2017-01-01", "2017-12-31"]
FAULTY_ITEM, FAULTY_BAND = 2, "B08"
FAULTS = ("truncated", "absent (404)", "refused (403)", "failing (500)", "failing once (500)")


def ours(items, grid) -> tuple[np.ndarray, np.ndarray]:
    ds = stac_source.read_stac_tile(items, grid, BANDS)
    return ds["bands"].values, ds["is_data"].values


def odc_load(items, grid, fail_on_error: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """odc.stac.load with what adopting it would take: asset keys made uniform, the offset applied per day from
    the day's item, the data mask from SCL, reflectance x 10000 clipped like ours."""
    import odc.stac
    from odc.geo.geobox import GeoBox

    uniform = [_band_named(item) for item in items]
    ds = odc.stac.load(
        uniform,
        bands=[*BANDS, "SCL"],
        geobox=GeoBox((grid.height, grid.width), grid.transform, grid.crs),
        groupby="solar_day",
        resampling={"*": "bilinear", "SCL": "nearest"},
        fail_on_error=fail_on_error,
        preserve_original_order=True,  # else a day's items are fused by time then id, not in the order given
    )
    by_day: dict = {}
    for item in uniform:  # the day's first item (the order given) decides its offset: odc fuses DN, not reflectance
        by_day.setdefault(str(item.datetime.date()), item)
    frames, masks = [], []
    for k, when in enumerate(ds["time"].values):
        item = by_day[str(np.datetime_as_string(when, unit="D"))]
        scl = ds["SCL"].values[k]
        values = np.stack([_reflectance(item, band, ds[band].values[k]) for band in BANDS], axis=-1)
        is_data = (scl != 0) & (np.stack([ds[band].values[k] for band in BANDS], axis=-1) != 0).all(axis=-1)
        values[~is_data] = 0.0
        frames.append(np.clip(np.rint(values * REFLECTANCE_SCALE), 0, np.iinfo(np.uint16).max).astype(np.uint16))
        masks.append(is_data)
    keep = [k for k, mask in enumerate(masks) if mask.any()]  # ours drops days with no data on the tile
    return np.stack([frames[k] for k in keep]), np.stack([masks[k] for k in keep])


def odc_load_tolerant(items, grid) -> tuple[np.ndarray, np.ndarray]:
    return odc_load(items, grid, fail_on_error=False)


def _band_named(item):
    """A copy of `item` whose assets are keyed by band (Earth Search keys them by common name)."""
    copy = item.clone()
    names = {common: band for band, common in stac_source.COMMON_NAMES.items()}
    copy.assets = {names.get(key, key): asset for key, asset in copy.assets.items()}
    return copy


def _reflectance(item, band: str, dn: np.ndarray) -> np.ndarray:
    raster = (item.assets[band].extra_fields.get("raster:bands") or [{}])[0]
    scale = float(raster.get("scale", 1.0 / REFLECTANCE_SCALE))
    offset = raster.get("offset", stac_source.BASELINE_OFFSET if stac_source._baseline(item) >= 4.0 else 0.0)
    return dn.astype(np.float32) * scale + float(offset)


@contextmanager
def catalogue_served(folder: Path, area, prepared: list[dict] | None):
    """A new stand-in over `folder` (fresh URLs: GDAL's cache is cold), the catalogue written once."""
    with stac_standin(folder) as server:
        if prepared is None:
            server.items = write_catalogue(folder, server.url, area, FRAMES)
        else:
            old = urlparse(next(iter(prepared[0]["assets"].values()))["href"]).netloc
            server.items = json.loads(json.dumps(prepared).replace(old, urlparse(server.url).netloc))
        yield server


def compare_pixels(folder: Path, area) -> list[str]:
    rows = []
    with catalogue_served(folder, area, None) as server:
        for grid in tiny_grids():
            items = stac_source.search_items(server.url, COLLECTION, grid, YEAR)
            (bands_a, data_a), (bands_b, data_b) = ours(items, grid), odc_load(items, grid)
            same_shape = bands_a.shape == bands_b.shape
            differ = int((bands_a != bands_b).any(axis=-1).sum()) if same_shape else -1
            mask_differ = int((data_a != data_b).sum()) if same_shape else -1
            verdict = (
                "identical" if differ == 0 and mask_differ == 0 else f"{differ} px bands, {mask_differ} mask differ"
            )
            rows.append(f"| pixels {grid.tile_id} | {bands_a.shape[0]} frames | {bands_b.shape[0]} frames, {verdict} |")
    return rows


def compare_duplicates(folder: Path, area) -> list[str]:
    """One day as two granules: a newer baseline (05.09, offset in raster:bands) over the area's western half, an
    older one (02.14, no offset) over all of it; each loader given them newest first, each against the truth."""
    rows, frame = [], 20
    with stac_standin(folder) as server:
        width = mosaic(area, "is_data", frame)[0].shape[1]
        keep = np.zeros_like(mosaic(area, "is_data", frame)[0])
        keep[:, : width // 2 + 30] = True  # the eastern tiles: 30 columns from the newer, 70 from the older
        day = f"{pd.Timestamp(next(iter(area.values()))[0]['time'].values[frame]):%Y%m%d}"
        server.items = [
            write_item(server.folder, server.url, area, frame, "02.14", f"S2A_33TVM_{day}_0_L2A"),
            write_item(server.folder, server.url, area, frame, "05.09", f"S2A_33TVM_{day}_1_L2A", keep=keep),
        ]
        for grid in tiny_grids():
            raw = area[grid.tile_id][0]
            truth, is_data = raw["bands"].sel(band=BANDS).values[frame], raw["is_data"].values[frame]
            items = stac_source.search_items(server.url, COLLECTION, grid, YEAR)
            newest_first = sorted(items, key=lambda item: stac_source._preference((item.datetime, item)))
            wrong = []
            for loader in (ours, odc_load):
                bands, _ = loader(newest_first, grid)
                wrong.append(int((bands[0] != truth).any(axis=-1)[is_data].sum()))
            rows.append(
                f"| same-day duplicates, two baselines, {grid.tile_id}: px differing from the truth "
                f"(of {int(is_data.sum())}) | {wrong[0]} | {wrong[1]} |"
            )
    return rows


def run_fault(folder: Path, area, fault: str, loader) -> str:
    with catalogue_served(folder / fault.split()[0] / loader.__name__, area, None) as server:
        grid = tiny_grids()[0]
        items = stac_source.search_items(server.url, COLLECTION, grid, YEAR)
        path = urlparse(stac_source._asset(items[FAULTY_ITEM], FAULTY_BAND).href).path
        cog = server.folder / path.lstrip("/")
        if fault == "truncated":
            cog.write_bytes(cog.read_bytes()[: cog.stat().st_size // 2])
        elif fault == "absent (404)":
            cog.unlink()
        else:
            status = 403 if "403" in fault else 500
            server.faults[path] = [status] * (1 if "once" in fault else 100)
        with catalogue_served(folder / "clean" / loader.__name__ / fault.split()[0], area, None) as clean:
            reference = loader(stac_source.search_items(clean.url, COLLECTION, grid, YEAR), grid)
        try:
            bands, is_data = loader(items, grid)
        except Exception as err:  # noqa: BLE001  (what each loader raises is the measurement)
            text = str(err)
            names = "names the URL" if path.split("/")[-1] in text and items[FAULTY_ITEM].id in text else "no URL"
            return f"raises {type(err).__name__} ({names})"
        if bands.shape == reference[0].shape and np.array_equal(bands, reference[0]):
            return "same pixels as unfaulted"
        lost = int(reference[1].sum() - is_data.sum())
        return f"**silent**: {reference[0].shape[0] - bands.shape[0]} frame(s), {lost} px lost"


def time_loader(folder: Path, area, loader, repeats: int) -> float:
    prepared = None
    with catalogue_served(folder / "timing", area, None) as server:
        prepared = server.items
    runs = []
    for repeat in range(repeats):
        with catalogue_served(folder / "timing", area, prepared) as server:
            grids = tiny_grids()
            items = [stac_source.search_items(server.url, COLLECTION, grid, YEAR) for grid in grids]
            start = time.perf_counter()
            for grid, tile_items in zip(grids, items):
                loader(tile_items, grid)
            runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    stac_source.GDAL_HTTP["GDAL_HTTP_RETRY_DELAY"] = 0.1  # the same retries, shorter waits
    import odc.stac

    odc.stac.configure_rio(cloud_defaults=False, **stac_source.GDAL_HTTP)  # both loaders with the same GDAL settings
    area = synthesize_area(tiny_config(), acquisitions=70)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("| case | landcover.ingest.stac | odc.stac.load |")
        print("|---|---|---|")
        for row in compare_pixels(folder / "pixels", area):
            print(row)
        for row in compare_duplicates(folder / "duplicates", area):
            print(row)
        for fault in FAULTS:
            results = [run_fault(folder, area, fault, loader) for loader in (ours, odc_load)]
            tolerant = run_fault(folder / "tolerant", area, fault, odc_load_tolerant)
            print(f"| fault: {fault} | {results[0]} | {results[1]}; fail_on_error=False: {tolerant} |")
        seconds = [
            time_loader(folder / name, area, loader, args.repeats) for name, loader in (("a", ours), ("b", odc_load))
        ]
        print(
            f"| time, 4 tiles x 7 items x 5 assets (median of {args.repeats}) | {seconds[0]:.2f} s | "
            f"{seconds[1]:.2f} s |"
        )


if __name__ == "__main__":
    main()
