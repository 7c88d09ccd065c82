"""Per-pixel linear interpolation in time through valid observations, onto a regular date grid.

The vectorised replacement for eo-learn's LinearInterpolationTask: for every pixel and target date, the previous and
next valid observation are found once (a running max/min of observation indices where valid), and all features are
gathered with that index, so the cost is independent of how many features there are and no Python loop runs per
pixel. Rules:

- between two valid observations: linear in time; exactly on one: its value;
- before a pixel's first or after its last valid observation: that observation's value (held);
- no valid observation at all: NaN for every date and feature;
- observations outside the grid's range (say December of the year before) take part like any other;
- times need not be sorted; observations sharing a timestamp are averaged over the valid ones first.

Values at valid observations must be finite; callers mark undefined values invalid (see landcover.features).
"""

from __future__ import annotations

import numpy as np

BLOCK_PIXELS = 1 << 14


def date_grid(start, end, step_days: int) -> np.ndarray:
    """Dates start, start + step, ... up to and including `end` when it falls on the grid, as datetime64[D]."""
    first, last = np.datetime64(start, "D"), np.datetime64(end, "D")
    if last < first:
        raise ValueError(f"date grid end {last} is before its start {first}")
    if int(step_days) != step_days or step_days <= 0:
        raise ValueError(f"date grid step_days must be a positive whole number of days, got {step_days}")
    return np.arange(first, last + np.timedelta64(1, "D"), np.timedelta64(int(step_days), "D"))


def _days(times, origin: np.datetime64) -> np.ndarray:
    return (np.asarray(times, dtype="datetime64[s]") - origin) / np.timedelta64(1, "D")


def _merge_duplicates(values: np.ndarray, valid: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average the valid observations of each run of equal (sorted) times."""
    counts = np.add.reduceat(valid, starts, axis=0, dtype=np.int32)
    sums = np.add.reduceat(np.where(valid[..., None], values, 0.0), starts, axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        merged = (sums / counts[..., None]).astype(np.float32)
    return merged, counts > 0


def _interpolate_block(values: np.ndarray, valid: np.ndarray, days: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """values (t, p, f) float32, each frame contiguous; valid (t, p); days sorted, unique -> (d, p, f) float32."""
    n_times, n_pixels, n_features = values.shape
    steps = np.arange(n_times, dtype=np.int32)[:, None]
    # last valid observation at or before each observation index, first valid at or after it
    last_valid = np.maximum.accumulate(np.where(valid, steps, -1), axis=0)
    first_valid = np.minimum.accumulate(np.where(valid, steps, n_times)[::-1], axis=0)[::-1]
    before = np.searchsorted(days, targets, side="right") - 1
    after = np.searchsorted(days, targets, side="left")
    prev = np.where(before[:, None] >= 0, last_valid[np.maximum(before, 0)], -1)
    nxt = np.where(after[:, None] < n_times, first_valid[np.minimum(after, n_times - 1)], n_times)
    # hold the nearest valid value outside a pixel's observed range
    prev = np.where(prev < 0, nxt, prev)
    nxt = np.where(nxt >= n_times, prev, nxt)
    empty = ~valid.any(axis=0)
    prev[:, empty] = 0
    nxt[:, empty] = 0

    t_prev, t_next = days[prev], days[nxt]
    span = t_next - t_prev
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(span > 0, (targets[:, None] - t_prev) / span, 0.0).astype(np.float32)

    # gather whole feature vectors at once: one (f * 4)-byte record per pixel and time
    records = values.view(np.dtype((np.void, 4 * n_features)))[..., 0]
    pixel = np.arange(n_pixels)
    v_prev = records[prev, pixel].view(np.float32).reshape(len(targets), n_pixels, n_features)
    v_next = records[nxt, pixel].view(np.float32).reshape(len(targets), n_pixels, n_features)
    v_next -= v_prev
    v_next *= weight[..., None]
    v_next += v_prev
    v_next[:, empty] = np.nan
    return v_next


def interpolate(values: np.ndarray, valid: np.ndarray, times, dates) -> np.ndarray:
    """Features (t, y, x, f) observed at `times`, valid where `valid` (t, y, x), on `dates` -> (d, y, x, f) float32.

    Works in blocks of about BLOCK_PIXELS pixels, so temporaries stay small beside the input and output."""
    values = np.asarray(values)
    valid = np.asarray(valid, dtype=bool)
    n_times, height, width, n_features = values.shape
    if valid.shape != values.shape[:3]:
        raise ValueError(f"valid mask has shape {valid.shape}, values have {values.shape[:3]}")
    times = np.asarray(times, dtype="datetime64[s]")
    if times.shape != (n_times,):
        raise ValueError(f"{times.size} times given for {n_times} observations")
    dates = np.asarray(dates, dtype="datetime64[D]")
    out = np.full((len(dates), height, width, n_features), np.nan, dtype=np.float32)
    if n_times == 0 or out.size == 0:
        return out

    origin = dates[0].astype("datetime64[s]")
    order = np.argsort(times, kind="stable")
    sorted_days = _days(times[order], origin)
    days, starts = np.unique(sorted_days, return_index=True)
    reorder = not np.array_equal(order, np.arange(n_times))
    merge = len(days) < n_times
    targets = _days(dates, origin)

    rows = max(1, BLOCK_PIXELS // max(width, 1))
    for start in range(0, height, rows):
        block = slice(start, min(start + rows, height))
        v, ok = values[:, block], valid[:, block]
        if reorder:
            v, ok = v[order], ok[order]
        if v.dtype != np.float32 or not v[0].flags.c_contiguous:
            v = np.ascontiguousarray(v, dtype=np.float32)
        if merge:
            v, ok = _merge_duplicates(v, ok, starts)
        n_rows = v.shape[1]
        result = _interpolate_block(v.reshape(len(days), -1, n_features), ok.reshape(len(days), -1), days, targets)
        out[:, block] = result.reshape(len(dates), n_rows, width, n_features)
    return out
