"""The synthetic land-cover truth: a landscape defined on world coordinates, mixed within 10 m pixels.

Every feature is a pure function of (seed, x, y) in the grid CRS: noise fields and Voronoi parcels
hashed from a global lattice, so a tile computed alone matches its neighbours along the border.
The landscape is drawn on a sub-grid (`SUBPIXELS` x `SUBPIXELS` points per pixel) and each pixel
keeps the parcels that cover it with their area shares: boundaries fall inside pixels, as on the
ground, and the spectral model blends them. A pixel's true class is the class covering most of it.
Shares mimic hilly Slovenia: forest the largest class but not a majority, then grassland and fields,
a few percent of built-up land, shrubs, water and wetlands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landcover.stack import TileGrid
from landcover.synthetic.noise import fbm, fbm_grid, hash64, uniform, value_noise_grid, voronoi_cells

CULTIVATED, FOREST, GRASSLAND, SHRUBLAND, WATER, WETLANDS, ARTIFICIAL, BARELAND = 1, 2, 3, 4, 5, 6, 8, 9

SUBPIXELS = 4  # sub-grid points per pixel side (2.5 m at 10 m pixels)
_STRIP_POINTS = 1_000_000  # sub-grid points drawn at once
# Parcel lattices: strips of fields (two orientations, so field patterns change from place to place)
# and isotropic forest stands. Sizes in metres.
_PARCEL_LENGTH, _PARCEL_WIDTH = 190.0, 50.0
_STAND_SIZE = 300.0
RELIEF = ((8000.0, 4000.0, 2000.0), (1.0, 0.6, 0.35))
_FOREST_EDGE = 0.08  # forest where its noise score exceeds this
_MANTLE = 0.16  # width (score units) of the shrub belt along forest edges, where there is one


@dataclass
class Components:
    """The parcels inside each pixel: one row per (pixel, parcel), rows in pixel order."""

    pixel: np.ndarray  # (n,) flat index of the pixel
    share: np.ndarray  # (n,) float32 share of the pixel's area
    cover: np.ndarray  # (n,) uint8 class
    unit: np.ndarray  # (n,) uint64 key of the parcel/stand/water body
    relief: np.ndarray  # (n,) mean unit-variance "elevation": snow lies longer, spring comes later uphill
    conifer: np.ndarray  # (n,) 0..1 conifer share of woody cover
    builtup: np.ndarray  # (n,) 0..1 sealed share (artificial)
    depth: np.ndarray  # (n,) 0 at a shore .. 1 in open water
    young: np.ndarray  # (n,) bool: young forest (clearing regrowth)
    garden: np.ndarray  # (n,) bool: grassland inside a village
    mantle: np.ndarray  # (n,) bool: shrub belt along a forest edge

    def pixel_mean(self, values: np.ndarray, pixels: int) -> np.ndarray:
        """Area-weighted mean over each pixel's components, (pixels,) float32."""
        return np.bincount(self.pixel, weights=self.share * values, minlength=pixels).astype(np.float32)


@dataclass
class Landscape:
    """The truth on a (possibly padded) pixel grid, with the mixture the spectral model blends."""

    x: np.ndarray  # (nx,) pixel-centre eastings
    y: np.ndarray  # (ny,) pixel-centre northings, descending
    land_cover: np.ndarray  # (ny, nx) uint8 class covering most of the pixel
    unit: np.ndarray  # (ny, nx) uint64 the largest parcel of that class in the pixel
    relief: np.ndarray  # (ny, nx) pixel mean of the relief
    young: np.ndarray  # (ny, nx) bool, of that parcel
    garden: np.ndarray  # (ny, nx) bool, of that parcel
    mantle: np.ndarray  # (ny, nx) bool, of that parcel
    parts: Components


def pixel_centres(grid: TileGrid, pad: int = 0, sub: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Eastings and northings of the pixel centres, `pad` pixels beyond the tile on every side;
    with `sub` > 1, of a sub-grid of sub x sub points per pixel instead."""
    t = grid.transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
        raise ValueError(f"tile {grid.tile_id}: the synthetic area needs a north-up grid, got transform {tuple(t)[:6]}")
    cols = (np.arange(-pad * sub, (grid.width + pad) * sub) + 0.5) / sub
    rows = (np.arange(-pad * sub, (grid.height + pad) * sub) + 0.5) / sub
    return t.c + cols * t.a, t.f + rows * t.e


def _line_distance(x: np.ndarray, y: np.ndarray, scales, weights, *key) -> np.ndarray:
    """Distance (m) to the zero contour of a noise field, to first order: meandering lines."""
    h = 1.0
    f = fbm_grid(x, y, scales, weights, *key)
    gx = (fbm_grid(x + h, y, scales, weights, *key) - f) / h
    gy = (fbm_grid(x, y + h, scales, weights, *key) - f) / h
    return np.abs(f) / np.maximum(np.hypot(gx, gy), 1e-9)


def _parcels(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Field parcels: (unit key, centre easting, centre northing) per point."""
    xx, yy = np.meshgrid(x, y)
    theta0 = np.pi * uniform(seed, "field-angle")
    system = fbm_grid(x, y, (2500.0, 900.0), (1.0, 0.4), seed, "field-system") > 0
    keys = np.zeros(xx.shape, dtype=np.uint64)
    cx, cy = np.zeros(xx.shape), np.zeros(xx.shape)
    for k, theta in enumerate((theta0, theta0 + 1.25)):
        c, s = np.cos(theta), np.sin(theta)
        sel = system == bool(k)
        u = (xx[sel] * c + yy[sel] * s) / _PARCEL_LENGTH
        v = (-xx[sel] * s + yy[sel] * c) / _PARCEL_WIDTH
        if u.size == 0:
            continue
        i, j = voronoi_cells(u, v, seed, "parcel", k)
        keys[sel] = hash64(seed, "parcel", k, i, j)
        # Voronoi centre back in world coordinates (the same jitter as voronoi_cells).
        cu = (i + 0.1 + 0.8 * uniform(seed, "parcel", k, "u", i, j)) * _PARCEL_LENGTH
        cv = (j + 0.1 + 0.8 * uniform(seed, "parcel", k, "v", i, j)) * _PARCEL_WIDTH
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


def _draw(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The landscape at the points of the grid y (rows) x x (columns): one array per property."""
    xx, yy = np.meshgrid(x, y)
    relief = fbm_grid(x, y, *RELIEF, seed, "relief")

    keys, cx, cy = _parcels(x, y, seed)
    cover = _open_land_class(keys, cx, cy, seed)
    unit = keys.copy()

    # Forest: irregular blocks, more likely uphill; stands subdivide it. Along part of its edge a
    # belt of shrubs (the forest mantle) grows into the open land.
    forest_score = 0.5 * relief + 0.87 * fbm_grid(
        x, y, (1500.0, 600.0, 250.0, 90.0), (1.0, 0.7, 0.45, 0.25), seed, "forest"
    )
    forest = forest_score > _FOREST_EDGE
    si, sj = voronoi_cells(xx / _STAND_SIZE, yy / _STAND_SIZE, seed, "stand")
    stands = hash64(seed, "stand", si, sj)
    belt = fbm_grid(x, y, (800.0, 250.0), (1.0, 0.4), seed, "mantle") > 0.2
    mantle = ~forest & (forest_score > _FOREST_EDGE - _MANTLE) & belt & (cover != CULTIVATED)
    cover[forest] = FOREST
    unit[forest] = stands[forest]
    cover[mantle] = SHRUBLAND
    unit[mantle] = hash64(seed, "mantle", stands[mantle])
    young = forest & (uniform(seed, "young", stands) < 0.12)

    # Stands are conifer, broadleaf or mixed, conifers more likely uphill and where the smooth
    # field says so.
    leaning = np.clip(0.4 + 0.3 * fbm_grid(x, y, (1200.0, 300.0), (1.0, 0.5), seed, "conifer") + 0.2 * relief, 0, 1)
    kind, amount = uniform(seed, "stand-kind", stands), uniform(seed, "stand-amount", stands)
    conifer = np.where(
        kind < 0.3,
        0.3 + 0.4 * amount,  # mixed
        np.where(kind < 0.3 + 0.7 * leaning, 0.8 + 0.2 * amount, 0.15 * amount),
    )

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
    marsh = ((lake > 2.2) | ((river_dist < half_width + 90.0) & (wet > 1.5) & (relief < 0))) & ~village
    cover[marsh] = WETLANDS
    unit[marsh] = hash64(seed, "marsh", stands[marsh])

    road_dist = _line_distance(x, y, (5000.0, 1600.0), (1.0, 0.3), seed, "road")
    road = road_dist < 5.0
    cover[road] = ARTIFICIAL
    unit[road] = hash64(seed, "road")

    water = (river_dist < half_width) | (lake > 2.45)
    cover[water] = WATER
    unit[water] = hash64(seed, "water")
    depth = np.maximum(np.clip((half_width - river_dist) / 4.0, 0, 1), np.clip((lake - 2.45) / 0.1, 0, 1))

    houses = value_noise_grid(x, y, 20.0, seed, "houses")
    builtup = np.where(road, 0.95, np.clip(0.45 + 0.35 * houses, 0.15, 0.9))
    return {
        "cover": cover,
        "unit": unit,
        "relief": relief,
        "conifer": conifer,
        "builtup": builtup,
        "depth": depth,
        "young": young & (cover == FOREST),
        "garden": village & (cover == GRASSLAND),
        "mantle": mantle & (cover == SHRUBLAND),
    }


def _components(points: dict[str, np.ndarray], ny: int, nx: int, sub: int) -> Components:
    """Group each pixel's sub x sub points by parcel (and class): one component per group."""
    per_pixel = sub * sub

    def blocks(a: np.ndarray) -> np.ndarray:
        return a.reshape(ny, sub, nx, sub).transpose(0, 2, 1, 3).reshape(ny * nx, per_pixel)

    key = blocks(hash64(points["unit"], points["cover"]))
    order = np.argsort(key, axis=1, kind="stable")
    key = np.take_along_axis(key, order, axis=1)
    first = np.ones(key.shape, dtype=bool)
    first[:, 1:] = key[:, 1:] != key[:, :-1]
    starts = np.flatnonzero(first)
    count = np.diff(np.append(starts, key.size))

    def sorted_flat(name: str) -> np.ndarray:
        return np.take_along_axis(blocks(points[name]), order, axis=1).ravel()

    def mean(name: str) -> np.ndarray:
        return (np.add.reduceat(sorted_flat(name), starts) / count).astype(np.float32)

    return Components(
        pixel=starts // per_pixel,
        share=(count / per_pixel).astype(np.float32),
        cover=sorted_flat("cover")[starts],
        unit=sorted_flat("unit")[starts],
        relief=mean("relief"),
        conifer=mean("conifer"),
        builtup=mean("builtup"),
        depth=mean("depth"),
        young=sorted_flat("young")[starts],
        garden=sorted_flat("garden")[starts],
        mantle=sorted_flat("mantle")[starts],
    )


def landscape(grid: TileGrid, seed: int, pad: int = 0) -> Landscape:
    """The truth and the sub-pixel mixture of a tile (padded by `pad` pixels)."""
    x, y = pixel_centres(grid, pad)
    xs, ys = pixel_centres(grid, pad, SUBPIXELS)
    # Drawn in strips of pixel rows (every field is a pure function of the point), so that a large
    # tile's sub-grid is never whole in memory.
    rows = max(1, _STRIP_POINTS // (xs.size * SUBPIXELS))
    strips = [
        _components(
            _draw(xs, ys[top * SUBPIXELS : (top + rows) * SUBPIXELS], seed), min(rows, y.size - top), x.size, SUBPIXELS
        )
        for top in range(0, y.size, rows)
    ]
    offsets = [top * x.size for top in range(0, y.size, rows)]
    parts = Components(
        **{
            name: np.concatenate([getattr(s, name) + (o if name == "pixel" else 0) for s, o in zip(strips, offsets)])
            for name in Components.__dataclass_fields__
        }
    )
    pixels = x.size * y.size
    # The true class covers most of the pixel; the register vectorises its largest parcel there.
    area = np.bincount(parts.pixel * 16 + parts.cover, weights=parts.share, minlength=pixels * 16)
    land_cover = area.reshape(pixels, 16).argmax(axis=1).astype(np.uint8)
    rank = parts.share + (parts.cover == land_cover[parts.pixel])
    best = np.lexsort((-rank, parts.pixel))
    main = best[np.flatnonzero(np.diff(parts.pixel[best], prepend=-1))]

    def grid_of(values: np.ndarray) -> np.ndarray:
        return values[main].reshape(y.size, x.size)

    return Landscape(
        x=x,
        y=y,
        land_cover=land_cover.reshape(y.size, x.size),
        unit=grid_of(parts.unit),
        relief=parts.pixel_mean(parts.relief, pixels).reshape(y.size, x.size),
        young=grid_of(parts.young),
        garden=grid_of(parts.garden),
        mantle=grid_of(parts.mantle),
        parts=parts,
    )


def land_cover_truth(grid: TileGrid, seed: int) -> np.ndarray:
    """The true land-cover classes (y, x) uint8, eo-learn ids."""
    return landscape(grid, seed).land_cover
