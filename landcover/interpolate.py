"""Per-pixel linear interpolation in time through valid observations, onto a regular date grid.

The vectorised replacement for eo-learn's LinearInterpolationTask. For every pixel and target date the previous and
next valid observation are found once (a running max/min of observation indices over the valid frames), and each
pixel's whole feature vector is gathered with that index, so no Python loop runs per pixel or per feature. Rules:

- between two valid observations: linear in time; exactly on one: its value;
- before a pixel's first or after its last valid observation: that observation's value (held);
- no valid observation at all: NaN for every date and feature;
- observations outside the grid's range (say December of the year before) take part like any other;
- each grid date is evaluated at one time of day (`time_of_day`, see `evaluation_times`): by default the
  acquisitions' own, so a grid date with an observation that day takes that observation's value;
- times need not be sorted; observations sharing a timestamp are averaged over the valid ones first (this costs a
  merged copy of the input, so callers with many duplicates should merge them themselves).

Values at valid observations must be finite: callers mark undefined values invalid (see landcover.features).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BLOCK_PIXELS = 1 << 13  # keeps the per-block index and weight arrays within a few MB
TIME_OF_DAY_MODES = ("acquisitions", "first_acquisition")  # or a UTC clock time "HH:MM", e.g. "00:00"
_DAY_S = 86400


def date_grid(start, end, step_days: int) -> np.ndarray:
    """Dates start, start + step, ... up to and including `end` when it falls on the grid, as datetime64[D]."""
    first, last = np.datetime64(start, "D"), np.datetime64(end, "D")
    if last < first:
        raise ValueError(f"date grid end {last} is before its start {first}")
    if int(step_days) != step_days or step_days <= 0:
        raise ValueError(f"date grid step_days must be a positive whole number of days, got {step_days}")
    return np.arange(first, last + np.timedelta64(1, "D"), np.timedelta64(int(step_days), "D"))


def _clock_seconds(text: str) -> int:
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", str(text))
    if match is None:
        raise ValueError(
            f"time_of_day must be one of {', '.join(TIME_OF_DAY_MODES)} or a UTC time HH:MM (e.g. 00:00), got {text!r}"
        )
    return int(match[1]) * 3600 + int(match[2]) * 60


def evaluation_times(dates, times, time_of_day: str = "acquisitions") -> tuple[np.ndarray, np.ndarray]:
    """The instants at which the grid `dates` are evaluated and the observation times used, both datetime64[s].

    A grid date is a calendar day; the interpolated value depends on the instant of that day it stands for:
    - "acquisitions" (the workflow's default): the observations' mean UTC time of day (a circular mean, so
      overpasses near midnight UTC work too). A grid date with an acquisition that day takes its value, as a user
      reading "the features of 17 January" expects; Sentinel-2 passes a place at nearly the same time every day.
    - "first_acquisition": eo-learn's InterpolationTask: the first (earliest) observation's time of day, and the
      observation times rounded to whole hours from it (observations in the same hour are averaged). For
      reproducing eo-learn's numbers; its choice depends on which frame comes first.
    - "HH:MM": that UTC time on every grid date; "00:00" (midnight) is what a datetime64[D] means by itself.
    Grid dates are whole days from `dates`; a range's end date is on the grid when it falls on a step (`date_grid`;
    eo-learn's resample_range leaves it out). Row 1b of benchmarks/RESULTS.md measures the conventions against
    eo-learn on the real patch (acquisitions near 10:00 UTC)."""
    fixed = None if time_of_day in TIME_OF_DAY_MODES else _clock_seconds(time_of_day)
    days = np.asarray(dates, dtype="datetime64[D]").astype("datetime64[s]")
    times = np.asarray(times, dtype="datetime64[s]")
    if fixed is not None or times.size == 0:
        return days + np.timedelta64(fixed or 0, "s"), times
    clock = (times - times.astype("datetime64[D]")).astype(np.int64)  # seconds since each day's 00:00 UTC
    if time_of_day == "acquisitions":
        angle = clock * (2 * np.pi / _DAY_S)
        mean = np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())
        offset = round(float(mean) * _DAY_S / (2 * np.pi)) % _DAY_S
        return days + np.timedelta64(offset, "s"), times
    first = times.min()  # first_acquisition
    hours = np.round((times - first) / np.timedelta64(3600, "s")).astype(np.int64)
    offset = int(clock[np.argmin(times)])
    return days + np.timedelta64(offset, "s"), first + (hours * 3600).astype("timedelta64[s]")


def _merge_duplicates(values: np.ndarray, valid: np.ndarray, order: np.ndarray, starts: np.ndarray):
    """Average the valid observations of each run of equal sorted times; returns sorted, unique-time arrays."""
    valid = valid[order]
    counts = np.add.reduceat(valid, starts, axis=0, dtype=np.int32)
    sums = np.add.reduceat(np.where(valid[..., None], values[order], 0.0), starts, axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        merged = (sums / counts[..., None]).astype(np.float32)
    return merged, counts > 0


def _nearest_valid(valid: np.ndarray, before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per date and pixel: the last valid observation index <= before[d] (-1: none) and the first one >= after[d]
    (n: none). valid (n, p) in time order."""
    n_times, n_pixels = valid.shape
    index = np.int8 if n_times < 127 else np.int16 if n_times < 32767 else np.int32
    prev = np.empty((len(before), n_pixels), dtype=index)
    nxt = np.empty((len(after), n_pixels), dtype=index)
    # marks: t where valid, else -1 (forward) or n (backward); arithmetic, as np.where with scalars is slow
    marks = np.multiply(valid, np.arange(1, n_times + 1, dtype=index)[:, None], dtype=index)
    marks -= 1
    state, t = np.full(n_pixels, -1, dtype=index), 0
    for d in np.argsort(before, kind="stable"):
        while t <= before[d]:
            np.maximum(state, marks[t], out=state)
            t += 1
        prev[d] = state
    np.multiply(~valid, np.arange(n_times, 0, -1, dtype=index)[:, None], out=marks)
    marks += np.arange(n_times, dtype=index)[:, None]
    state, t = np.full(n_pixels, n_times, dtype=index), n_times - 1
    for d in np.argsort(after, kind="stable")[::-1]:
        while t >= after[d]:
            np.minimum(state, marks[t], out=state)
            t -= 1
        nxt[d] = state
    return prev, nxt


def _weight_tables(days: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(d, t * t) float32: the weight of the next observation n against the previous one p at each date, at
    p * t + n; 0 where p == n (a hold or an exact hit). Looking weights up is 3x faster than computing them."""
    span = days[None, :] - days[:, None]
    lag = targets[:, None, None] - days[None, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(span > 0, lag / span, 0.0).astype(np.float32).reshape(len(targets), -1)


def _interpolate_block(records, frame_of, offset, valid, weights, before, after, out) -> None:
    """Fill out (d, p, f) for the pixels offset .. offset + p of `records` (frames x pixels, one void record of f
    float32 per pixel); frame_of maps sorted observation index -> frame of `records`; valid (t, p) sorted."""
    n_times, n_pixels = valid.shape
    prev, nxt = _nearest_valid(valid, before, after)
    np.copyto(prev, nxt, where=prev < 0)  # hold the first valid value before it
    np.copyto(nxt, prev, where=nxt >= n_times)  # and the last one after it
    empty = prev[0] >= n_times
    np.minimum(prev, n_times - 1, out=prev)
    np.minimum(nxt, n_times - 1, out=nxt)

    flat = records.reshape(-1)
    pixel = np.arange(offset, offset + n_pixels)
    frames = frame_of.astype(np.intp) * records.shape[1]
    index = np.empty(n_pixels, dtype=np.intp)
    pair = np.empty(n_pixels, dtype=np.int16 if n_times * n_times < 32767 else np.int32)
    weight = np.empty(n_pixels, dtype=np.float32)
    upper = np.empty_like(out[0])
    upper_records = upper.view(records.dtype).reshape(-1)
    for d in range(len(weights)):
        np.multiply(prev[d], n_times, out=pair, dtype=pair.dtype)
        np.add(pair, nxt[d], out=pair)
        weights[d].take(pair, out=weight)
        lower = out[d]
        np.add(frames.take(prev[d]), pixel, out=index)
        np.take(flat, index, out=lower.view(records.dtype).reshape(-1), mode="clip")
        np.add(frames.take(nxt[d]), pixel, out=index)
        np.take(flat, index, out=upper_records, mode="clip")
        np.subtract(upper, lower, out=upper)
        np.multiply(upper, weight[:, None], out=upper)
        np.add(lower, upper, out=lower)
    if empty.any():
        out[:, empty] = np.nan


def interpolate(
    values: np.ndarray, valid: np.ndarray, times, dates, workers: int | None = None, time_of_day: str = "acquisitions"
) -> np.ndarray:
    """Features (t, y, x, f) observed at `times`, valid where `valid` (t, y, x), on `dates` -> (d, y, x, f) float32.

    Each date is evaluated at the instant `time_of_day` picks (`evaluation_times`).

    Blocks of BLOCK_PIXELS pixels run on `workers` threads (numpy releases the GIL; default: one per CPU). Beside the input and the output, memory holds only each block's indices and weights (and a float32
    copy of the input when it is not C-ordered float32 or has duplicate times)."""
    valid = np.asarray(valid, dtype=bool)
    values = np.asarray(values)
    if values.ndim != 4 or valid.shape != values.shape[:3]:
        raise ValueError(
            f"values must be (time, y, x, feature) and valid (time, y, x); got {values.shape}, {valid.shape}"
        )
    n_times, height, width, n_features = values.shape
    times = np.asarray(times, dtype="datetime64[s]")
    if times.shape != (n_times,):
        raise ValueError(f"{times.size} times given for {n_times} observations")
    dates, times = evaluation_times(dates, times, time_of_day)
    if n_times == 0 or len(dates) == 0:
        return np.full((len(dates), height, width, n_features), np.nan, dtype=np.float32)
    out = np.empty((len(dates), height, width, n_features), dtype=np.float32)

    origin = dates.min()
    order = np.argsort(times, kind="stable")
    days, starts = np.unique((times[order] - origin) / np.timedelta64(1, "D"), return_index=True)
    if len(days) < n_times:
        values, valid = _merge_duplicates(values, valid, order, starts)
        order = np.arange(len(days))
    values = np.ascontiguousarray(values, dtype=np.float32)
    records = values.reshape(len(days), height * width, n_features).view(np.dtype((np.void, 4 * n_features)))[..., 0]
    targets = (dates - origin) / np.timedelta64(1, "D")
    before = np.searchsorted(days, targets, side="right") - 1
    after = np.searchsorted(days, targets, side="left")
    weights = _weight_tables(days, targets)

    rows = max(1, BLOCK_PIXELS // width)

    def run(start: int) -> None:
        stop = min(start + rows, height)
        block_valid = valid[order, start:stop].reshape(len(days), -1)
        block_out = out[:, start:stop].reshape(len(dates), -1, n_features)
        _interpolate_block(records, order, start * width, block_valid, weights, before, after, block_out)

    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        list(pool.map(run, range(0, height, rows)))
    return out
