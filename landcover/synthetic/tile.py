"""One synthetic tile: a year of L1C-like scenes over the synthetic landscape, and the truth behind them."""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from landcover import stack
from landcover.stack import TileGrid
from landcover.synthetic import sky as skies
from landcover.synthetic.landscape import (
    ARTIFICIAL,
    FOREST,
    SHRUBLAND,
    WATER,
    WETLANDS,
    Landscape,
    landscape,
    pixel_centres,
)
from landcover.synthetic.noise import rng
from landcover.synthetic.surface import SNOW, Surface

log = logging.getLogger(__name__)

# The point-spread functions, 3 x 3 per band (Gaussian, sigma 0.7 px for the 10 m bands B02, B03, B04, B08,
# 1.2 px for the coarser 20 m and 60 m bands): neighbouring classes mix at borders.
_PSF = np.where(
    np.isin(np.arange(13), (1, 2, 3, 7)), np.array([[0.209], [0.582], [0.209]]), np.array([[0.293], [0.414], [0.293]])
).astype(np.float32)
_PAD = 1
# Truth thresholds: a pixel is cloud (shadow) where the cloud (shade) opacity exceeds these.
CLOUD_TRUTH, CIRRUS_TRUTH, SHADOW_TRUTH, SNOW_TRUTH = 0.25, 0.4, 0.25, 0.3
# Sensor and scene noise: relative and absolute (reflectance) standard deviations.
_NOISE_REL, _NOISE_ABS = 0.012, 0.002


def _visible_snow(land: Landscape) -> np.ndarray:
    """Share of ground snow seen from above, (y, x): canopies hide it, water does not hold it."""
    parts = land.parts
    share = np.ones(parts.cover.shape, dtype=np.float32)
    share[parts.cover == FOREST] = (0.4 + 0.3 * (1 - parts.conifer))[parts.cover == FOREST]
    share[parts.cover == SHRUBLAND] = 0.6
    share[parts.cover == ARTIFICIAL] = 0.5
    share[parts.cover == WETLANDS] = 0.7
    share[parts.cover == WATER] = 0.0
    return parts.pixel_mean(share, land.land_cover.size).reshape(land.land_cover.shape)


def _blur(a: np.ndarray) -> np.ndarray:
    """Apply the separable PSFs (y, x, band) and drop the padding."""
    a = _PSF[0] * a[:-2] + _PSF[1] * a[1:-1] + _PSF[2] * a[2:]
    return _PSF[0] * a[:, :-2] + _PSF[1] * a[:, 1:-1] + _PSF[2] * a[:, 2:]


def _add_noise(toa: np.ndarray, noise: np.random.Generator) -> None:
    """Sensor noise of std rel * toa + abs, in place; uniform with a normal's spread (a third of the cost)."""
    jitter = noise.random(toa.shape, dtype=np.float32)
    jitter -= 0.5
    jitter *= np.float32(np.sqrt(12.0))
    spread = toa * np.float32(_NOISE_REL)
    spread += np.float32(_NOISE_ABS)
    spread *= jitter
    toa += spread


def synthesize_tile(
    grid: TileGrid, seed: int, year: int = 2017, acquisitions: int = 70
) -> tuple[xr.Dataset, xr.Dataset]:
    """A year of synthetic Sentinel-2 L1C acquisitions over a tile, and the truth behind them.

    Returns (stack, truth): the raw stack of `landcover.stack` (13 bands, uint16 reflectance x 10000,
    `is_data`) and `land_cover` (y, x) plus the true `cloud`, `shadow` and `snow` (time, y, x).
    Cloud and shadow are False outside the swath. Same arguments, identical arrays."""
    dates = skies.acquisition_dates(seed, year, acquisitions)
    land = landscape(grid, seed, pad=_PAD)
    model = Surface(land, seed, grid.transform.a)
    snow_share = _visible_snow(land)
    x, y = pixel_centres(grid)
    noise = rng(seed, "sensor", round(grid.bounds[0]), round(grid.bounds[1]))

    shape = (len(dates), grid.height, grid.width)
    bands = np.zeros(shape + (len(stack.L1C_BANDS),), dtype=np.uint16)
    is_data = np.zeros(shape, dtype=bool)
    cloud, shadow, snow = (np.zeros(shape, dtype=bool) for _ in range(3))
    for k, date in enumerate(dates):
        s = skies.sky(seed, date)
        surface = model.reflectance(s.day, s.doy, s.turbidity)
        if s.snow > 0:
            ground = skies.snow_cover(land.x, land.y, land.relief, seed, s) * snow_share
            surface += ground[..., None] * (SNOW - surface)
            snow[k] = ground[_PAD:-_PAD, _PAD:-_PAD] > SNOW_TRUTH
        toa = _blur(surface)
        toa[..., 9] *= s.vapour
        if s.cloud_cover > 0:
            shade = skies.cloud_opacity(x, y, seed, s, s.shadow_shift)
            if shade.any():
                toa *= 1 - shade[..., None] * skies.SHADOW_DEPTH
                shadow[k] = shade > SHADOW_TRUTH
            alpha = skies.cloud_opacity(x, y, seed, s)
            if alpha.any():
                # The cloud replaces the ground by its opacity; thicker cores are brighter.
                spectrum = skies.CLOUD * s.cloud_brightness
                spectrum[10] = s.cloud_b10
                toa *= (1 - alpha)[..., None]
                toa += (alpha * (alpha * 0.3 + 0.8))[..., None] * spectrum
                cloud[k] = alpha > CLOUD_TRUTH
        if s.cirrus > 0:
            veil = skies.cirrus_opacity(x, y, seed, s)
            toa += veil[..., None] * skies.CIRRUS
            cloud[k] |= veil > CIRRUS_TRUTH
        toa += s.haze * skies.HAZE
        toa *= s.gain
        _add_noise(toa, noise)
        toa *= stack.REFLECTANCE_SCALE
        bands[k] = np.clip(np.rint(toa, out=toa), 1, 65535, out=toa)

        shadow[k] &= ~cloud[k]
        seen = skies.in_swath(x, y, s)
        is_data[k] = seen
        if not seen.all():
            bands[k][~seen] = 0
            cloud[k] &= seen
            shadow[k] &= seen

    log.info(
        "tile %s: %d acquisitions %s..%s, %.0f%% of pixel-dates cloudy, %.1f%% outside the swath",
        grid.tile_id,
        len(dates),
        dates[0],
        dates[-1],
        100 * cloud.mean(),
        100 * (1 - is_data.mean()),
    )
    raw = stack.new_stack(bands, is_data, dates, stack.L1C_BANDS, grid)
    truth = xr.Dataset(
        {
            "land_cover": (("y", "x"), land.land_cover[_PAD:-_PAD, _PAD:-_PAD]),
            "cloud": (("time", "y", "x"), cloud),
            "shadow": (("time", "y", "x"), shadow),
            "snow": (("time", "y", "x"), snow),
        },
        coords={"time": dates.astype("datetime64[ns]")},
    )
    return raw, stack.with_grid(truth, grid)
