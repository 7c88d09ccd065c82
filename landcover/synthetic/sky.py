"""Acquisition dates and what the sky does on each: clouds, their shadows, cirrus, haze, snow, swath.

Everything is a function of (seed, date) and world coordinates, so that tiles generated apart agree
on the same date (one cloud crossing a tile border stays one cloud). Cloudiness follows Slovenia's
climate: about 40% of acquisitions largely cloudy, more in the foggy winter half-year.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from landcover.synthetic.noise import fbm_grid_coarse, uniform

REVISIT_DAYS = 5
# Share of dates that are largely cloudy / clear, January..December.
_CLOUDY = np.array([0.55, 0.50, 0.45, 0.45, 0.40, 0.30, 0.25, 0.25, 0.35, 0.45, 0.60, 0.60])
_CLEAR = np.array([0.20, 0.25, 0.25, 0.25, 0.30, 0.35, 0.40, 0.40, 0.35, 0.30, 0.20, 0.20])
# Chance of snow on the ground in the lowlands, January..December: on the real patch every class's
# February NDVI is near 0.2.
_SNOWY = np.array([0.80, 0.75, 0.25, 0.03, 0, 0, 0, 0, 0, 0, 0.15, 0.65])

# Thick cloud, per band: about the median of the thick pixels (B02 > 0.35) that s2cloudless calls certain
# cloud (p > 0.95) in the crop of its real test scene that data/ carries, over the brightening of
# cloud cores below. B10 (cirrus band) is set per date: high tops are bright there.
CLOUD = np.array([0.40, 0.40, 0.39, 0.41, 0.40, 0.44, 0.49, 0.44, 0.52, 0.075, 0.0, 0.39, 0.25], dtype=np.float32)
# Ice cloud: little visible brightening, strong at 1375 nm (B10), moderate in SWIR.
CIRRUS = np.array([0.10, 0.09, 0.085, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 0.04, 0.035, 0.06, 0.04], dtype=np.float32)
# Cloud shadows keep the diffuse skylight (bluer), so blue darkens least.
SHADOW_DEPTH = np.array([0.30, 0.38, 0.42, 0.46, 0.50, 0.52, 0.52, 0.52, 0.52, 0.50, 0.0, 0.52, 0.52], dtype=np.float32)
# Aerosol haze: additive path reflectance, strongest at short wavelengths; the low winter sun's
# longer path adds some every winter date.
HAZE = np.array([1.0, 0.85, 0.65, 0.5, 0.42, 0.33, 0.28, 0.25, 0.22, 0.15, 0.0, 0.05, 0.03], dtype=np.float32)

CLOUD_SCALES = ((12000.0, 5000.0, 2000.0, 800.0, 300.0, 120.0), (1.0, 0.8, 0.6, 0.4, 0.25, 0.12))
_SWATH_PERIOD_M = 12000.0
_FIELD_STEP_M = 40.0  # sampling step of the smooth per-date fields
_LAT, _LON = 46.1, 14.6


def acquisition_dates(seed: int, year: int = 2017, acquisitions: int = 70) -> np.ndarray:
    """Sentinel-2 overpass times of the year (datetime64[s]): a 5-day revisit with gaps, some slots
    taken by the neighbouring relative orbit (3 days later, 10:05 instead of 10:00 UTC)."""
    start = np.datetime64(f"{year}-01-01", "D")
    days = int((np.datetime64(f"{year + 1}-01-01", "D") - start).astype(int))
    main = np.arange(int(uniform(seed, "orbit-phase", year) * REVISIT_DAYS), days, REVISIT_DAYS)
    side = main + 3
    side = side[side < days]
    if not 0 < acquisitions <= main.size + side.size:
        raise ValueError(f"acquisitions must be between 1 and {main.size + side.size} for {year}, got {acquisitions}")
    # Main-orbit slots first unless lost (about one in eight); side-orbit slots fill the gaps.
    order = np.concatenate(
        [
            uniform(seed, "main", year, main) + 3.0 * (uniform(seed, "lost", year, main) < 0.12),
            2.0 + uniform(seed, "side", year, side),
        ]
    )
    chosen = np.sort(np.concatenate([main, side])[np.argsort(order, kind="stable")[:acquisitions]])
    seconds = np.where(np.isin(chosen, main), 36000, 36300) + (uniform(seed, "second", year, chosen) * 60).astype(int)
    return start.astype("datetime64[s]") + chosen.astype("timedelta64[D]") + seconds.astype("timedelta64[s]")


def _day(date: np.datetime64) -> int:
    return int(np.datetime64(date, "D").astype(np.int64))


def solar_geometry(date: np.datetime64) -> tuple[float, float]:
    """Sun zenith and azimuth (degrees) over Slovenia at the acquisition time."""
    t = np.datetime64(date, "s")
    doy = (t - t.astype("datetime64[Y]")).astype("timedelta64[s]").astype(float) / 86400.0
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    hour_angle = np.radians(((doy % 1.0) * 24.0 + _LON / 15.0 - 12.0) * 15.0)
    lat = np.radians(_LAT)
    cos_zen = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    zen = np.arccos(cos_zen)
    az = np.arctan2(np.sin(hour_angle), np.cos(hour_angle) * np.sin(lat) - np.tan(decl) * np.cos(lat)) + np.pi
    return float(np.degrees(zen)), float(np.degrees(az) % 360.0)


@dataclass(frozen=True)
class Sky:
    """The conditions of one acquisition, the same over the whole area."""

    day: int
    doy: float
    cloud_cover: float  # expected cloudy share of a large area
    cloud_opacity: float  # 1 for thick clouds, less for a thin veil
    cloud_ramp: float  # how soft cloud edges are (noise units)
    cloud_brightness: float
    cloud_b10: float  # cirrus-band reflectance of the cloud tops (high tops are bright)
    shadow_shift: tuple[float, float]  # metres from a ground point towards the cloud shading it
    cirrus: float  # peak cirrus opacity, 0 if none
    haze: float
    vapour: float  # B09 water-vapour absorption factor
    gain: float  # scene-wide radiometric variation
    turbidity: float  # suspended sediment in the water
    snow: float  # share of the lowlands under snow, 0 if none
    swath_gap: float  # share of the swath-edge period without data, 0 if fully covered
    swath_offset: float


def sky(seed: int, date: np.datetime64) -> Sky:
    """The conditions of the acquisition at `date`, hashed from (seed, day) alone."""
    day = _day(date)
    t = np.datetime64(date, "s")
    doy = float((t - t.astype("datetime64[Y]")).astype("timedelta64[s]").astype(float) / 86400.0)
    month = int(str(np.datetime64(date, "M"))[-2:]) - 1

    def u(name: str) -> float:
        return float(uniform(seed, "sky", name, day))

    r = u("cloudiness")
    if r < _CLOUDY[month]:
        cover = min(1.0, 0.7 + 0.45 * u("cover"))
    elif r < _CLOUDY[month] + _CLEAR[month]:
        cover = 0.0
    else:
        cover = 0.03 + 0.62 * u("cover")
    thin = u("thin") < 0.12
    zen, az = solar_geometry(date)
    height = 500.0 + 1500.0 * u("height")  # cloud base, metres
    reach = height * np.tan(np.radians(zen))
    return Sky(
        day=day,
        doy=doy,
        cloud_cover=cover,
        cloud_opacity=0.35 + 0.35 * u("opacity") if thin else 1.0,
        cloud_ramp=0.25 + 0.5 * u("ramp"),
        cloud_brightness=0.85 + 0.45 * u("brightness"),
        cloud_b10=0.005 + 0.05 * u("top"),
        shadow_shift=(float(reach * np.sin(np.radians(az))), float(reach * np.cos(np.radians(az)))),
        cirrus=0.3 + 0.7 * u("cirrus-amount") if u("cirrus") < 0.15 else 0.0,
        haze=0.012 * u("haze") ** 2 + 0.015 * (1 - np.cos(2 * np.pi * (doy - 172) / 365.0)),
        vapour=0.8 + 0.4 * u("vapour"),
        gain=1.0 + 0.03 * (2.0 * u("gain") - 1.0),
        turbidity=0.01 + 0.07 * u("turbidity"),
        snow=0.5 + 0.5 * u("snow-cover") if u("snow") < _SNOWY[month] else 0.0,
        swath_gap=0.25 + 0.3 * u("swath-gap") if u("swath") < 0.06 else 0.0,
        swath_offset=u("swath-offset") * _SWATH_PERIOD_M,
    )


def cloud_opacity(x: np.ndarray, y: np.ndarray, seed: int, s: Sky, shift=(0.0, 0.0)) -> np.ndarray:
    """Cloud opacity 0..1 on the grid (x, y), optionally of the clouds `shift` metres away."""
    if s.cloud_cover <= 0:
        return np.zeros((y.size, x.size), dtype=np.float32)
    z = fbm_grid_coarse(x + shift[0], y + shift[1], *CLOUD_SCALES, seed, "cloud", s.day, step=_FIELD_STEP_M)
    threshold = ndtri(1.0 - min(s.cloud_cover, 0.999))
    return (np.clip((z - threshold) / s.cloud_ramp, 0.0, 1.0) ** 0.8 * s.cloud_opacity).astype(np.float32)


def cirrus_opacity(x: np.ndarray, y: np.ndarray, seed: int, s: Sky) -> np.ndarray:
    """Cirrus: fibrous, elongated veils (stretched noise), 0 where none."""
    if s.cirrus <= 0:
        return np.zeros((y.size, x.size), dtype=np.float32)
    z = fbm_grid_coarse(x / 3.0, y, (2000.0, 600.0, 150.0), (1.0, 0.6, 0.3), seed, "cirrus", s.day, step=_FIELD_STEP_M)
    return (np.clip(z / 1.5 + 0.3, 0.0, 1.0) * s.cirrus).astype(np.float32)


def snow_cover(x: np.ndarray, y: np.ndarray, relief: np.ndarray, seed: int, s: Sky) -> np.ndarray:
    """Ground snow fraction 0..1: lying longer uphill and in patches."""
    if s.snow <= 0:
        return np.zeros(relief.shape, dtype=np.float32)
    z = 0.6 * relief + 0.8 * fbm_grid_coarse(
        x, y, (3000.0, 800.0, 200.0), (1.0, 0.5, 0.25), seed, "snow", s.day, step=_FIELD_STEP_M
    )
    return np.clip((z - ndtri(1.0 - min(s.snow, 0.999))) / 0.4 + 0.5, 0.0, 1.0).astype(np.float32)


def in_swath(x: np.ndarray, y: np.ndarray, s: Sky) -> np.ndarray:
    """Whether the satellite saw each pixel: swath edges run NNE-SSW like the orbit's ground track."""
    if s.swath_gap <= 0:
        return np.ones((y.size, x.size), dtype=bool)
    along = x[None, :] * np.cos(0.2) - y[:, None] * np.sin(0.2)
    return np.mod(along + s.swath_offset, _SWATH_PERIOD_M) >= s.swath_gap * _SWATH_PERIOD_M
