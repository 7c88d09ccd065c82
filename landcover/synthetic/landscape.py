"""The synthetic land-cover truth: a landscape defined on world coordinates.

Every feature is a pure function of (seed, x, y) in the grid CRS: noise fields and Voronoi parcels
hashed from a global lattice, so a tile computed alone matches its neighbours along the border.
Shares mimic lowland/hilly Slovenia: forest dominant, then grassland and fields, a few percent of
built-up land, water, shrubs and wetlands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landcover.stack import TileGrid
from landcover.synthetic.noise import fbm, fbm_grid, hash64, uniform, value_noise_grid, voronoi_cells

CULTIVATED, FOREST, GRASSLAND, SHRUBLAND, WATER, WETLANDS, ARTIFICIAL, BARELAND = 1, 2, 3, 4, 5, 6, 8, 9

# Parcel lattices: strips of fields (two orientations, so field patterns change from place to place)
# and isotropic forest stands. Sizes in metres.
_PARCEL_LENGTH, _PARCEL_WIDTH = 230.0, 75.0
_STAND_SIZE = 300.0
RELIEF = ((8000.0, 4000.0, 2000.0), (1.0, 0.6, 0.35))


@dataclass
class Landscape:
    """The truth on a (possibly padded) pixel grid, with what the spectral model needs per pixel."""

    x: np.ndarray  # (nx,) pixel-centre eastings
    y: np.ndarray  # (ny,) pixel-centre northings, descending
    land_cover: np.ndarray  # (ny, nx) uint8 class ids
    unit: np.ndarray  # (ny, nx) uint64 key of the parcel/stand/water body a pixel belongs to
    relief: np.ndarray  # (ny, nx) unit-variance "elevation" (snow lies longer uphill)
    conifer: np.ndarray  # (ny, nx) 0..1 conifer share of the canopy
    builtup: np.ndarray  # (ny, nx) 0..1 sealed share of artificial pixels
    young: np.ndarray  # (ny, nx) bool: young forest (clearing regrowth)
    garden: np.ndarray  # (ny, nx) bool: grassland inside a village


def pixel_centres(grid: TileGrid, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eastings and northings of the pixel centres, `pad` pixels beyond the tile on every side."""
    t = grid.transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
        raise ValueError(f"tile {grid.tile_id}: the synthetic area needs a north-up grid, got transform {tuple(t)[:6]}")
    cols = np.arange(-pad, grid.width + pad) + 0.5
    rows = np.arange(-pad, grid.height + pad) + 0.5
    return t.c + cols * t.a, t.f + rows * t.e


def _line_distance(x: np.ndarray, y: np.ndarray, scales, weights, *key) -> np.ndarray:
    """Distance (m) to the zero contour of a noise field, to first order: meandering lines."""
    h = 1.0
    f = fbm_grid(x, y, scales, weights, *key)
    gx = (fbm_grid(x + h, y, scales, weights, *key) - f) / h
    gy = (fbm_grid(x, y + h, scales, weights, *key) - f) / h
    return np.abs(f) / np.maximum(np.hypot(gx, gy), 1e-9)


def _parcels(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Field parcels: (unit key, centre easting, centre northing) per pixel."""
    xx, yy = np.meshgrid(x, y)
    theta0 = np.pi * uniform(seed, "field-angle")
    system = fbm_grid(x, y, (2500.0, 900.0), (1.0, 0.4), seed, "field-system") > 0
    keys = np.zeros(xx.shape, dtype=np.uint64)
    cx, cy = np.zeros(xx.shape), np.zeros(xx.shape)
    for k, theta in enumerate((theta0, theta0 + 1.25)):
        c, s = np.cos(theta), np.sin(theta)
        u = (xx * c + yy * s) / _PARCEL_LENGTH
        v = (-xx * s + yy * c) / _PARCEL_WIDTH
        i, j = voronoi_cells(u, v, seed, "parcel", k)
        sel = system == bool(k)
        keys[sel] = hash64(seed, "parcel", k, i[sel], j[sel])
        # Voronoi centre back in world coordinates (the same jitter as voronoi_cells).
        cu = (i[sel] + 0.1 + 0.8 * uniform(seed, "parcel", k, "u", i[sel], j[sel])) * _PARCEL_LENGTH
        cv = (j[sel] + 0.1 + 0.8 * uniform(seed, "parcel", k, "v", i[sel], j[sel])) * _PARCEL_WIDTH
        cx[sel], cy[sel] = cu * c - cv * s, cu * s + cv * c
    return keys, cx, cy


def _open_land_class(keys: np.ndarray, cx: np.ndarray, cy: np.ndarray, seed: int) -> np.ndarray:
    """Each parcel's use, drawn once per parcel: fields in the flats, meadows on slopes."""
    ukeys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    relief = fbm(cx.ravel()[first], cy.ravel()[first], *RELIEF, seed, "relief")
    flat = 1.0 / (1.0 + np.exp(2.0 * relief))  # 1 in valleys, 0 on hills
    u = uniform(seed, "parcel-use", ukeys)
    # Cumulative shares: cultivated, grassland, shrubland, artificial (farmyards), bareland, wetlands.
    cultivated = 0.12 + 0.58 * flat
    shares = np.stack(
        [
            cultivated,
            0.93 - cultivated - 0.06 * flat,
            np.full_like(flat, 0.045) + 0.02 * (1 - flat),
            np.full_like(flat, 0.02),
            np.full_like(flat, 0.012),
            0.02 * flat,
        ]
    )
    edges = np.cumsum(shares / shares.sum(axis=0), axis=0)
    choice = (u[None, :] > edges).sum(axis=0)
    # (The last entry catches u above the final edge by rounding.)
    lut = np.array([CULTIVATED, GRASSLAND, SHRUBLAND, ARTIFICIAL, BARELAND, WETLANDS, WETLANDS], dtype=np.uint8)
    return lut[choice][inverse].reshape(keys.shape)


def landscape(grid: TileGrid, seed: int, pad: int = 0) -> Landscape:
    """The truth and per-pixel surface properties of a tile (padded by `pad` pixels)."""
    x, y = pixel_centres(grid, pad)
    xx, yy = np.meshgrid(x, y)
    relief = fbm_grid(x, y, *RELIEF, seed, "relief")

    keys, cx, cy = _parcels(x, y, seed)
    cover = _open_land_class(keys, cx, cy, seed)
    unit = keys.copy()

    # Forest: irregular blocks, more likely uphill; stands subdivide it.
    forest_score = 0.5 * relief + 0.87 * fbm_grid(
        x, y, (1500.0, 600.0, 250.0, 90.0), (1.0, 0.7, 0.45, 0.25), seed, "forest"
    )
    forest = forest_score > -0.28
    si, sj = voronoi_cells(xx / _STAND_SIZE, yy / _STAND_SIZE, seed, "stand")
    stands = hash64(seed, "stand", si, sj)
    cover[forest] = FOREST
    unit[forest] = stands[forest]
    young = forest & (uniform(seed, "young", stands) < 0.03)

    # Villages: in the valleys, parcels mostly built over, some left as gardens.
    village = fbm_grid(x, y, (1400.0, 600.0, 200.0), (1.0, 0.6, 0.3), seed, "village") - 0.55 * relief > 1.85
    garden = uniform(seed, "garden", keys) < 0.15
    cover[village] = np.where(garden[village], GRASSLAND, ARTIFICIAL)
    unit[village] = keys[village]

    # Rivers: zero contours of a smooth field, 25-50 m wide, lined by riparian shrubs; lakes and
    # their marshy shores in the lowest spots.
    river_dist = _line_distance(x, y, (6000.0, 2500.0, 900.0), (1.0, 0.45, 0.15), seed, "river")
    half_width = 12.0 + 13.0 * (0.5 + 0.5 * value_noise_grid(x, y, 1500.0, seed, "river-width"))
    wet = fbm_grid(x, y, (700.0, 250.0), (1.0, 0.4), seed, "wet")
    riparian = (river_dist < half_width + 25.0) & (wet > -0.2) & ~village
    cover[riparian] = SHRUBLAND
    unit[riparian] = hash64(seed, "riparian", stands[riparian])
    lake = fbm_grid(x, y, (1200.0, 450.0, 150.0), (1.0, 0.5, 0.2), seed, "lake") - 0.6 * relief
    marsh = ((lake > 2.25) | ((river_dist < half_width + 90.0) & (wet > 1.5) & (relief < 0))) & ~village
    cover[marsh] = WETLANDS
    unit[marsh] = hash64(seed, "marsh", stands[marsh])

    road_dist = _line_distance(x, y, (5000.0, 1600.0), (1.0, 0.3), seed, "road")
    road = road_dist < 5.0
    cover[road] = ARTIFICIAL
    unit[road] = hash64(seed, "road")

    water = (river_dist < half_width) | (lake > 2.45)
    cover[water] = WATER
    unit[water] = hash64(seed, "water")

    conifer = np.clip(
        0.45 + 0.35 * fbm_grid(x, y, (1200.0, 300.0), (1.0, 0.5), seed, "conifer") + 0.25 * relief, 0.0, 1.0
    )
    houses = value_noise_grid(x, y, 20.0, seed, "houses")
    builtup = np.where(road, 0.95, np.clip(0.72 + 0.35 * houses, 0.3, 1.0))
    return Landscape(
        x=x,
        y=y,
        land_cover=cover,
        unit=unit,
        relief=relief,
        conifer=conifer,
        builtup=builtup,
        young=young & (cover == FOREST),
        garden=village & (cover == GRASSLAND),
    )


def land_cover_truth(grid: TileGrid, seed: int) -> np.ndarray:
    """The true land-cover classes (y, x) uint8, eo-learn ids."""
    return landscape(grid, seed).land_cover
