"""Deterministic (seeded) benchmark inputs, built the same way by the peer and by our side.

Both sides of a row call the same function with the same seed in their own process, so they see
bit-identical arrays (each prints a checksum of its input that bench.py compares).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import numpy as np

WORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "work")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 2017
YEAR = 2017
DATE_START, DATE_END, STEP_DAYS = "2017-01-01", "2017-12-31", 16
CRS = "EPSG:32633"
# a tile id in Slovenia (UTM 33N) at 5 km / 10 km tile sizes
ORIGIN_X, ORIGIN_Y = 455000, 5095000
L1C_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
FEATURE_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
INDICES = ("NDVI", "NDWI", "NORM")
FEATURE_NAMES = FEATURE_BANDS + INDICES
CHAIN_SIZE, CHAIN_TIMES = 500, 60  # row 4's stack
PREDICT_SIZE, TRAIN_FOR_PREDICT = 1000, 40_000  # row 5: a 10 km tile, the model trained on 40 000 samples


def checksum(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


def grid(size_px: int, resolution_m: float = 10.0):
    """A TileGrid of size_px x size_px pixels in Slovenia."""
    from landcover.grid import tile_grid

    size_m = size_px * resolution_m
    tile = f"x{int(ORIGIN_X // size_m):04d}_y{int(ORIGIN_Y // size_m):04d}"
    return tile_grid(tile, size_m, resolution_m, CRS)


def acquisition_times(n: int, seed: int = SEED, hour: int = 0) -> np.ndarray:
    """n distinct acquisition days of 2017 (sorted), at `hour`:00:00, as datetime64[s].

    Midnight by default: eo-learn's InterpolationTask measures the target dates from the first acquisition's
    *date* but the acquisitions from its *time*, so it evaluates the grid at the first acquisition's time of day
    (10:00 for Sentinel-2 over Slovenia) instead of at 00:00 of each grid date. At midnight both agree and the
    comparison isolates the interpolation itself. Whole hours also keep eo-learn's rounding of times to hours exact."""
    rng = np.random.default_rng([seed, n, 1])
    days = np.sort(rng.choice(365, size=n, replace=False))
    base = np.datetime64(f"{YEAR}-01-01T{hour:02d}:00:00", "s")
    return base + days.astype("timedelta64[D]").astype("timedelta64[s]")


def to_datetimes(times: np.ndarray) -> list[dt.datetime]:
    return [t.astype("datetime64[s]").astype(dt.datetime) for t in times]


def target_dates() -> np.ndarray:
    """The 23-date 2017 grid (2017-01-01 every 16 days), datetime64[D]."""
    return np.arange(np.datetime64(DATE_START), np.datetime64(DATE_END) + 1, STEP_DAYS)


# ---------------------------------------------------------------- row 1: interpolation


def interpolation_inputs(height=500, width=500, n_times=60, n_features=9, masked=0.3, seed=SEED):
    """Random values (t, y, x, f) float32 in 0..1, `masked` of the observations invalid at random."""
    rng = np.random.default_rng([seed, 11])
    values = rng.random((n_times, height, width, n_features), dtype=np.float32)
    valid = rng.random((n_times, height, width), dtype=np.float32) >= masked
    return values, valid, acquisition_times(n_times, seed), target_dates()


# ---------------------------------------------------------------- row 2: labels and features


def labels(size_px=500, seed=SEED) -> np.ndarray:
    """Synthetic land-cover truth (parcels, forest stands, rivers, roads): uint8 eo-learn class ids."""
    from landcover.synthetic.landscape import land_cover_truth

    return land_cover_truth(grid(size_px), seed)


def features_cube(size_px=500, seed=SEED) -> np.ndarray:
    """Interpolated-feature-like cube (date, y, x, feature) float32."""
    rng = np.random.default_rng([seed, 22])
    return rng.random((len(target_dates()), size_px, size_px, len(FEATURE_NAMES)), dtype=np.float32)


def _with_grid(ds, size_px: int):
    """landcover.stack.with_grid without its copy: rioxarray's write_crs/write_transform deep-copy the dataset
    unless inplace (the benchmark inputs should not count twice in a side's peak RSS)."""
    g = grid(size_px)
    ds = ds.assign_coords(g.coords())  # a new Dataset sharing the arrays
    ds.rio.write_crs(g.crs, inplace=True).rio.write_transform(g.transform, inplace=True)
    ds.attrs["tile_id"] = g.tile_id
    return ds


def features_dataset(cube: np.ndarray, size_px: int):
    """The in-memory features.nc Dataset (landcover/stack.py format) around a cube (not copied)."""
    import xarray as xr

    ds = xr.Dataset(
        {
            "features": (("date", "y", "x", "feature"), cube),
            "valid_count": (("y", "x"), np.full(cube.shape[1:3], 30, dtype=np.uint16)),
        },
        coords={"date": target_dates().astype("datetime64[ns]"), "feature": list(FEATURE_NAMES)},
    )
    return _with_grid(ds, size_px)


# ---------------------------------------------------------------- rows 3-4: raw L1C stacks

# Typical L1C top-of-atmosphere reflectance of a few surfaces, B01..B12 (13 bands).
_SURFACES = np.array(
    [
        [0.13, 0.10, 0.08, 0.06, 0.10, 0.22, 0.27, 0.29, 0.31, 0.09, 0.006, 0.16, 0.08],  # vegetation
        [0.13, 0.10, 0.08, 0.05, 0.08, 0.18, 0.22, 0.24, 0.25, 0.08, 0.005, 0.11, 0.05],  # forest
        [0.15, 0.13, 0.12, 0.13, 0.16, 0.19, 0.21, 0.22, 0.24, 0.08, 0.006, 0.28, 0.22],  # soil
        [0.14, 0.12, 0.09, 0.06, 0.05, 0.04, 0.04, 0.03, 0.03, 0.01, 0.003, 0.02, 0.01],  # water
        [0.17, 0.15, 0.14, 0.14, 0.16, 0.17, 0.18, 0.19, 0.20, 0.08, 0.006, 0.22, 0.19],  # built-up
    ],
    dtype=np.float32,
)
_CLOUD = np.array([0.45, 0.44, 0.43, 0.44, 0.46, 0.48, 0.49, 0.49, 0.50, 0.24, 0.04, 0.36, 0.27], dtype=np.float32)


def _smooth_noise(rng, height, width, cells) -> np.ndarray:
    """Smooth noise in about -1..1: random values on a coarse lattice, bilinearly upsampled."""
    import cv2

    coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def raw_stack(height=500, width=500, n_times=60, seed=SEED, swath_edges=False):
    """A raw L1C-like stack: bands (t, y, x, 13) uint16 reflectance x 10000, is_data (t, y, x), times.

    Surfaces from a smooth class map, a seasonal vegetation cycle, and per-frame clouds of random
    cover (a third of the frames clear, a third mostly cloudy) and thickness, so that s2cloudless
    sees clear, thin and thick clouds and the valid-coverage filter keeps only part of the frames.
    With swath_edges, a fifth of the frames miss a diagonal strip of the tile (is_data False, bands 0)."""
    rng = np.random.default_rng([seed, height, width, n_times, 33])
    times = acquisition_times(n_times, seed)
    doy = (times - np.datetime64(f"{YEAR}-01-01", "s")) / np.timedelta64(1, "D")
    cls = np.digitize(_smooth_noise(rng, height, width, max(2, height // 40)), [-0.6, 0.0, 0.5, 0.9]).astype(np.int8)
    texture = 0.08 * _smooth_noise(rng, height, width, max(2, height // 8))
    bands = np.empty((n_times, height, width, 13), dtype=np.uint16)
    is_data = np.ones((n_times, height, width), dtype=bool)
    rows, cols = np.mgrid[0:height, 0:width]
    for t in range(n_times):
        season = np.float32(0.5 - 0.5 * np.cos(2 * np.pi * (doy[t] - 20) / 365))  # 0 in winter, 1 in summer
        surface = _SURFACES[cls].copy()  # (y, x, 13)
        veg = cls <= 1
        surface[veg, 3] *= 1.6 - 0.6 * season  # red drops in summer
        surface[veg, 6:9] *= 0.6 + 0.5 * season  # NIR rises
        surface *= 1.0 + texture[..., None] + rng.normal(0, 0.02, (height, width, 1)).astype(np.float32)
        kind = t % 3
        cover = {0: -2.0, 1: 0.3, 2: -0.6}[kind] + rng.normal(0, 0.3)
        field = _smooth_noise(rng, height, width, max(2, height // 60)) + cover
        alpha = np.clip(field, 0.0, 1.0)[..., None] * rng.uniform(0.5, 1.0)
        frame = surface * (1.0 - alpha) + _CLOUD * alpha
        bands[t] = np.clip(frame * 10000.0, 0, 65535).astype(np.uint16)
        if swath_edges and t % 5 == 4:
            edge = rows + cols < (t % 7 + 1) * (height + width) // 10
            is_data[t, edge] = False
            bands[t, edge] = 0
    return bands, is_data, times


def stack_dataset(bands, is_data, times, size_px):
    """The raw stack Dataset of landcover.stack.new_stack, around the arrays (not copied)."""
    import xarray as xr

    ds = xr.Dataset(
        {"bands": (("time", "y", "x", "band"), bands), "is_data": (("time", "y", "x"), is_data)},
        coords={"time": np.asarray(times, dtype="datetime64[ns]"), "band": list(L1C_BANDS)},
    )
    return _with_grid(ds, size_px)


def block_mean_80m(bands: np.ndarray, is_data: np.ndarray, factor: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The 80 m reflectance the peer runs on: per 8 x 8 block the mean of its data pixels (partial edge blocks
    average the pixels they have), float32 in 0..1; and whether a block has any data. Written here in plain numpy,
    independently of landcover.clouds, with the same arithmetic (exact uint32 sums / (count * 10000))."""
    n, h, w, b = bands.shape
    rows, cols = -(-h // factor), -(-w // factor)
    out = np.empty((n, rows, cols, b), dtype=np.float32)
    has = np.empty((n, rows, cols), dtype=bool)
    for t in range(n):
        d = np.zeros((rows * factor, cols * factor), dtype=bool)
        d[:h, :w] = is_data[t]
        x = np.zeros((rows * factor, cols * factor, b), dtype=np.uint16)
        x[:h, :w] = np.where(is_data[t][..., None], bands[t], 0)
        sums = x.reshape(rows, factor, cols, factor, b).sum(axis=(1, 3), dtype=np.uint32)
        counts = d.reshape(rows, factor, cols, factor).sum(axis=(1, 3), dtype=np.uint32)
        out[t] = (sums / (np.maximum(counts, 1)[..., None] * 10000.0)).astype(np.float32)
        has[t] = counts > 0
    return out, has


def write_stack_file(path: str, bands, is_data, times, size_px) -> None:
    from landcover import stack

    if not os.path.exists(path):
        stack.write(stack_dataset(bands, is_data, times, size_px), path)


# ---------------------------------------------------------------- rows 5-6: model inputs

CLASSES_8 = np.array([1, 2, 3, 4, 5, 6, 8, 9], dtype=np.uint8)


def class_profiles(n_features=207, seed=SEED) -> np.ndarray:
    """A mean feature vector per class (8, n_features): smooth temporal profiles, classes overlapping."""
    rng = np.random.default_rng([seed, 55])
    n_dates = n_features // 9 if n_features % 9 == 0 else n_features
    base = rng.random((len(CLASSES_8), 1, 9)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (len(CLASSES_8), 1, 9)).astype(np.float32)
    t = np.linspace(0, 2 * np.pi, n_dates, dtype=np.float32)[None, :, None]
    prof = base + 0.2 * np.sin(t + phase)
    return prof.reshape(len(CLASSES_8), -1)[:, :n_features].astype(np.float32)


def class_table(n: int, n_features=207, seed=SEED, noise=0.35) -> tuple[np.ndarray, np.ndarray]:
    """n samples: (features (n, n_features) float32, labels (n,) uint8 with eo-learn ids, Slovenia-like shares)."""
    rng = np.random.default_rng([seed, n, n_features, 66])
    shares = np.array([0.20, 0.50, 0.20, 0.03, 0.01, 0.01, 0.04, 0.01])
    which = rng.choice(len(CLASSES_8), size=n, p=shares)
    x = rng.standard_normal((n, n_features), dtype=np.float32)
    x *= noise
    profiles = class_profiles(n_features, seed)
    for start in range(0, n, 65536):  # in chunks: no (n, n_features) temporary
        x[start : start + 65536] += profiles[which[start : start + 65536]]
    return x, CLASSES_8[which]


def samples_frame(n: int, seed=SEED, scales: int = 1):
    """A samples table as landcover.sampling writes it (tile_id,row,col,label + 207 date-major feature columns, or
    as many per spatial scale: `scales` 3 for the default methods' features smoothed at two scales)."""
    import pandas as pd

    from landcover.sampling import feature_columns

    names = [f"{name}{suffix}" for suffix in ("", "_s1", "_s3")[:scales] for name in FEATURE_NAMES]
    x, y = class_table(n, 23 * len(names), seed)
    columns = feature_columns(target_dates(), names)
    ids = pd.DataFrame(
        {
            "tile_id": pd.Series(["x0000_y0000"] * n, dtype=str),
            "row": np.zeros(n, dtype=np.int32),
            "col": np.zeros(n, dtype=np.int32),
            "label": y,
        }
    )
    return pd.concat([ids, pd.DataFrame(x, columns=columns)], axis=1)


def model_paths() -> tuple[str, str]:
    """The model rows 5 and the bounded-memory predict use (trained once by run_ours.py prepare_model)."""
    return os.path.join(WORK, "model_40k.txt"), os.path.join(WORK, "model_40k.json")


def prediction_table() -> np.ndarray:
    """The 1000 x 1000 tile's feature table (1e6, 207) float32, rows in C order of (y, x)."""
    x, _ = class_table(PREDICT_SIZE * PREDICT_SIZE, 207, seed=SEED + 1)
    return x


def samples_tables(n: int, name: str = "train", seed=SEED, scales: int = 1) -> list[str]:
    """`n` samples as tables of 25 000 rows each, as `sample` writes them (cached under work/): the input both
    sides of row 6 read (`scales` as samples_frame)."""
    folder = os.path.join(WORK, f"{name}_samples_{n}" + (f"_x{scales}" if scales > 1 else ""))
    if not os.path.isdir(folder):
        os.makedirs(folder + ".partial", exist_ok=True)
        table = samples_frame(n, seed, scales)
        for part, start in enumerate(range(0, n, 25000)):
            table.iloc[start : start + 25000].to_parquet(os.path.join(folder + ".partial", f"{part:04d}.parquet"))
        del table
        os.replace(folder + ".partial", folder)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


# ---------------------------------------------------------------- row 1b: the real patch

REAL_PATCH = os.path.join(REPO, "data", "eolearn-testeopatch", "TestEOPatch")


def _load_npy_gz(path: str) -> np.ndarray:
    import gzip

    with gzip.open(path + ".gz", "rb") as f:
        return np.load(f)


def real_patch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The repository's real eo-learn test EOPatch (Slovenia): NDVI (t, y, x, 1) float32, IS_VALID (t, y, x)
    and the 68 acquisition times (near 10:00 UTC) as datetime64[s]."""
    import json

    with open(os.path.join(REAL_PATCH, "timestamps.json")) as f:
        times = np.array(json.load(f), dtype="datetime64[s]")
    ndvi = _load_npy_gz(os.path.join(REAL_PATCH, "data", "NDVI.npy")).astype(np.float32)
    valid = _load_npy_gz(os.path.join(REAL_PATCH, "mask", "IS_VALID.npy"))[..., 0].astype(bool)
    return ndvi, valid & np.isfinite(ndvi[..., 0]), times


def country_settings() -> dict:
    """config/slovenia.yaml over the schema's defaults (as the Snakefile validates it): the country run that the
    bounded-memory jobs and the projection model, with the workflow's default methods."""
    from tools.country import country_config

    return country_config()


def country_margin_px() -> int:
    """The margin (px) config/slovenia.yaml's tiles read around themselves (landcover.config.margin_px)."""
    from landcover.config import margin_px

    return margin_px(country_settings())
