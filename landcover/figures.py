"""The figures of the eo-learn post that explain the pipeline: what the features look like per class
through the year, what temporal interpolation does to a cloudy stack, and what the negative buffer
does to the reference."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import rasterio
import xarray as xr
from matplotlib.figure import Figure

from landcover.classes import NO_DATA, LandCoverClass
from landcover.features import INDICES, compute_features, dates_attr
from landcover.maps import TRUE_COLOUR, TRUE_COLOUR_GAIN, class_rgb, legend_handles, save_png
from landcover.stack import load

RAW_FRAMES = 5  # acquisitions shown before / after interpolation
MASKED = (1.0, 1.0, 1.0)  # cloudy or missing pixels in the raw frames


def class_evolution(
    sample_paths, classes: tuple[LandCoverClass, ...], features: list[str], png_path, dpi: int
) -> pd.DataFrame:
    """Per configured feature, the mean and the 10-90 % range of each class's interpolated training series.

    Reads only the needed columns of the samples tables; returns the plotted statistics (class, feature, date)."""
    schema = pq.read_schema(sample_paths[0]).names
    # the interpolated series only: `{feature}_{YYYY-MM-DD}`, not the spatial-context or temporal-statistics columns
    columns = {f: [c for c in schema if re.fullmatch(rf"{re.escape(f)}_\d{{4}}-\d{{2}}-\d{{2}}", c)] for f in features}
    missing = [f for f, found in columns.items() if not found]
    if missing:
        raise ValueError(f"{sample_paths[0]}: samples hold no feature(s) {', '.join(missing)}")
    wanted = ["label", *(c for found in columns.values() for c in found)]
    tables = [pd.read_parquet(p, columns=wanted) for p in sample_paths]
    samples = pd.concat(tables, ignore_index=True)
    present = [c for c in classes if c.id != NO_DATA and (samples["label"] == c.id).any()]
    rows = []
    fig = Figure(figsize=(6.5 * min(len(features), 3), 3.6 * -(-len(features) // 3)), layout="constrained")
    for index, feature in enumerate(features):
        ax = fig.add_subplot(-(-len(features) // 3), min(len(features), 3), index + 1)
        dates = pd.to_datetime([c.removeprefix(f"{feature}_") for c in columns[feature]])
        for cls in present:
            values = samples.loc[samples["label"] == cls.id, columns[feature]].to_numpy(dtype=np.float64)
            mean = np.nanmean(values, axis=0)
            low, high = np.nanpercentile(values, [10, 90], axis=0)
            colour = cls.colour if cls.rgb != (0, 0, 0) else "#444444"
            ax.plot(dates, mean, color=colour, label=cls.name, lw=2)
            ax.fill_between(dates, low, high, color=colour, alpha=0.15)
            rows += [
                {
                    "class": cls.name,
                    "feature": feature,
                    "date": d,
                    "mean": m,
                    "p10": lo,
                    "p90": hi,
                    "pixels": len(values),
                }
                for d, m, lo, hi in zip(dates, mean, low, high)
            ]
        ax.set_title(feature)
        ax.tick_params(axis="x", labelrotation=45)
    fig.legend(handles=legend_handles(classes, [c.id for c in present]), loc="outside right upper")
    fig.suptitle("Interpolated training pixels per class: mean, 10-90 % range")
    save_png(fig, png_path, dpi)
    return pd.DataFrame(rows)


def _picture(values: np.ndarray, names: list[str]) -> tuple[np.ndarray, str]:
    """(y, x, 3) picture of features (y, x, f): true colour when B04/B03/B02 are among them, else NDVI or the first."""
    if all(band in names for band in TRUE_COLOUR):
        rgb = np.stack([values[..., names.index(band)] for band in TRUE_COLOUR], axis=-1)
        return np.clip(rgb * TRUE_COLOUR_GAIN, 0, 1), "true colour"
    name = "NDVI" if "NDVI" in names else names[0]
    from matplotlib import colormaps

    return colormaps["YlGn"](np.clip((values[..., names.index(name)] + 0.2) / 1.1, 0, 1))[..., :3], name


def pick_frames(times: np.ndarray, count: int = RAW_FRAMES) -> np.ndarray:
    """Indices of up to `count` acquisitions spread evenly over the stack's time span, in time order."""
    seconds = times.astype("datetime64[s]").astype(np.int64)
    targets = np.linspace(seconds.min(), seconds.max(), min(count, len(times)))
    chosen = {int(np.argmin(np.abs(seconds - t))) for t in targets}
    return np.array(sorted(chosen, key=lambda i: seconds[i]))


def interpolation_stack(stack: xr.Dataset, clouds: xr.Dataset, features: xr.Dataset, png_path, dpi: int) -> list[str]:
    """A few raw acquisitions with clouds and missing data blanked (top) above the interpolated features at the
    nearest grid dates (bottom); returns the raw dates shown."""
    names = [str(f) for f in features["feature"].values]
    shown = [n for n in (*TRUE_COLOUR, *INDICES) if n in names] or names[:1]
    times = stack["time"].values
    frames = pick_frames(times)
    kept = set(dates_attr(features, "kept_dates"))
    band_names = [str(b) for b in stack["band"].values]
    raw_bands = [b for b in shown if b in band_names]
    raw_indices = [n for n in shown if n in INDICES and all(b in band_names for b in INDICES[n])]
    grid_dates = features["date"].values
    fig = Figure(figsize=(2.6 * len(frames), 6), layout="constrained")
    for column, frame in enumerate(frames):
        bands = load(stack["bands"].isel(time=frame).transpose("y", "x", "band"))
        raw, raw_names = compute_features(bands, band_names, raw_bands, raw_indices)
        if not raw_names and "indices" in stack:  # an index-only source (an EOPatch with NDVI): its own index
            raw_names = [str(i) for i in stack["index"].values]
            raw = load(stack["indices"].isel(time=frame).transpose("y", "x", "index")).astype(np.float32)
        valid = load(stack["is_data"].isel(time=frame).transpose("y", "x")) & ~load(
            clouds["cloud_mask"].isel(time=frame).transpose("y", "x")
        ).astype(bool)
        picture, what = _picture(raw, raw_names)
        picture[~valid] = MASKED
        when = np.datetime_as_string(times[frame], unit="s")
        status = "kept" if when in kept else "dropped"
        ax = fig.add_subplot(2, len(frames), column + 1)
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(f"{when[:10]}\n{status}, {valid.mean():.0%} valid", fontsize=9)
        nearest = int(np.argmin(np.abs(grid_dates - times[frame])))
        values = load(features["features"].isel(date=nearest).transpose("y", "x", "feature"))
        interpolated, _ = _picture(values, names)
        interpolated[~np.isfinite(interpolated).all(axis=-1)] = MASKED
        ax2 = fig.add_subplot(2, len(frames), len(frames) + column + 1)
        ax2.imshow(interpolated, interpolation="nearest")
        ax2.set_title(f"interpolated {np.datetime_as_string(grid_dates[nearest], unit='D')}", fontsize=9)
        for a in (ax, ax2):
            a.set_xticks([])
            a.set_yticks([])
    fig.suptitle(
        f"tile {stack.attrs.get('tile_id', '?')}: raw {what} with clouds and missing data blanked (top), "
        "interpolated (bottom)"
    )
    save_png(fig, png_path, dpi)
    return [np.datetime_as_string(times[f], unit="D") for f in frames]


def negative_buffer(reference_path, classes: tuple[LandCoverClass, ...], png_path, dpi: int) -> dict[str, int]:
    """The tile's rasterised reference before and after the negative buffer; returns the labelled pixel counts."""
    with rasterio.open(reference_path) as src:
        if src.count < 2:
            raise ValueError(f"{reference_path}: a reference raster holds the reference and the eroded reference")
        before, after = src.read(1), src.read(2)
    fig = Figure(figsize=(10, 5.4), layout="constrained")
    counts = {"before": int((before > 0).sum()), "after": int((after > 0).sum())}
    for index, (labels, title) in enumerate(((before, "before"), (after, "after the negative buffer"))):
        ax = fig.add_subplot(1, 2, index + 1)
        ax.imshow(class_rgb(labels, classes), interpolation="nearest")
        ax.set_title(f"{title}: {int((labels > 0).sum())} labelled pixels")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(handles=legend_handles(classes, np.unique(before)), loc="outside lower center", ncol=5, frameon=False)
    save_png(fig, png_path, dpi)
    return counts
