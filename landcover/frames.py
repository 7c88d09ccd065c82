"""Frames kept and dropped per reason, per tile: the data loss a user sees in the validation report.

Sources drop frames before the stack exists (a damaged-looking band, no data on the tile) and count them in the
stack's ``attrs["dropped_frames"]`` (JSON {reason: count}); the scene filter drops frames whose valid coverage is
not above the threshold, either because the swath covers too little of the tile or because of clouds.
``frames/<tile>.json`` = {"tile": id, "kept": n, "dropped": {reason: count}}.
"""

from __future__ import annotations

import json
import os

import numpy as np
import xarray as xr

from landcover.atomic import atomic_path
from landcover.features import valid_mask
from landcover.stack import ROW_CHUNK, StackError, load

__all__ = ["CLOUDS", "SWATH", "frame_counts", "source_drops", "write_frame_counts"]

SWATH = "data coverage not above the threshold (swath edge)"
CLOUDS = "cloud cover above the threshold"


def source_drops(stack: xr.Dataset) -> dict[str, int]:
    """The frames a source dropped, per reason (empty for sources that drop none)."""
    text = stack.attrs.get("dropped_frames", "") or "{}"
    try:
        drops = json.loads(text)
    except ValueError as err:
        raise StackError(f"tile {stack.attrs.get('tile_id', '?')}: attrs dropped_frames is not JSON ({err})") from err
    return {str(reason): int(count) for reason, count in drops.items()}


def frame_counts(stack: xr.Dataset, clouds: xr.Dataset, threshold: float) -> dict:
    """Kept frames and dropped frames per reason, the scene filter's decision as `tile_features` makes it.

    Reads is_data and the cloud mask in row blocks (their on-disk chunks)."""
    data = np.zeros(stack.sizes["time"])
    valid = np.zeros(stack.sizes["time"])
    for start in range(0, stack.sizes["y"], ROW_CHUNK):
        rows = slice(start, start + ROW_CHUNK)
        is_data = load(stack["is_data"].isel(y=rows))
        data += is_data.sum(axis=(1, 2))
        valid += valid_mask(is_data, load(clouds["cloud_mask"].isel(y=rows))).sum(axis=(1, 2))
    pixels = stack.sizes["y"] * stack.sizes["x"]
    kept = valid / pixels > threshold  # as filter_scenes (eo-learn's ValidDataFractionPredicate)
    swath = ~kept & ~(data / pixels > threshold)
    dropped = source_drops(stack)
    for reason, count in ((SWATH, int(swath.sum())), (CLOUDS, int((~kept & ~swath).sum()))):
        if count:
            dropped[reason] = dropped.get(reason, 0) + count
    return {"tile": str(stack.attrs.get("tile_id", "")), "kept": int(kept.sum()), "dropped": dropped}


def write_frame_counts(counts: dict, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n")
