"""Coordinate-hashed randomness: every random value is a pure function of (seed, channel, integer keys).

Tiles are generated independently, so nothing may depend on which tile asks: lattice values, parcel
centres and per-date conditions are hashed from world-lattice indices, never drawn from a stream.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.spatial import cKDTree

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective avalanche on uint64."""
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def _as_u64(key) -> np.ndarray:
    if isinstance(key, str):
        return np.asarray(zlib.crc32(key.encode()), dtype=np.uint64)
    return (
        np.asarray(key, dtype=np.int64).view(np.uint64)
        if np.ndim(key)
        else np.asarray(int(key) & (2**64 - 1), dtype=np.uint64)
    )


def hash64(*keys) -> np.ndarray:
    """A uint64 hash of integer (array) or string keys, broadcast together."""
    with np.errstate(over="ignore"):
        h = np.asarray(0x2545F4914F6CDD1D, dtype=np.uint64)
        for key in keys:
            h = _mix(h ^ (_as_u64(key) + _GOLDEN + (h << np.uint64(6)) + (h >> np.uint64(2))))
        return h


def uniform(*keys) -> np.ndarray:
    """Uniform [0, 1) floats hashed from the keys."""
    return (hash64(*keys) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def rng(*keys) -> np.random.Generator:
    """A numpy generator seeded from the keys (for per-tile noise that needs no cross-tile agreement)."""
    return np.random.default_rng(int(hash64(*keys)))


def _smooth(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def value_noise(x: np.ndarray, y: np.ndarray, scale: float, *key) -> np.ndarray:
    """Smooth noise in [-1, 1] at world points (x, y broadcast), lattice spacing `scale` metres."""
    gx, gy = np.asarray(x, dtype=np.float64) / scale, np.asarray(y, dtype=np.float64) / scale
    ix, iy = np.floor(gx), np.floor(gy)
    wx, wy = _smooth(gx - ix), _smooth(gy - iy)
    ix, iy = ix.astype(np.int64), iy.astype(np.int64)

    def corner(dx, dy):
        return uniform(*key, ix + dx, iy + dy) * 2.0 - 1.0

    bottom = corner(0, 0) + wx * (corner(1, 0) - corner(0, 0))
    top = corner(0, 1) + wx * (corner(1, 1) - corner(0, 1))
    return bottom + wy * (top - bottom)


def value_noise_grid(x: np.ndarray, y: np.ndarray, scale: float, *key) -> np.ndarray:
    """`value_noise` on the grid y (rows) x x (columns), hashing each lattice corner once."""
    gx, gy = np.asarray(x, dtype=np.float64) / scale, np.asarray(y, dtype=np.float64) / scale
    ix, iy = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    wx, wy = _smooth(gx - ix), _smooth(gy - iy)
    x0, y0 = ix.min(), iy.min()
    cols = np.arange(x0, ix.max() + 2)
    rows = np.arange(y0, iy.max() + 2)
    lattice = uniform(*key, cols[None, :], rows[:, None]) * 2.0 - 1.0
    cx, cy = ix - x0, iy - y0
    lower = lattice[cy][:, cx] * (1 - wx) + lattice[cy][:, cx + 1] * wx
    upper = lattice[cy + 1][:, cx] * (1 - wx) + lattice[cy + 1][:, cx + 1] * wx
    return lower * (1 - wy)[:, None] + upper * wy[:, None]


# Standard deviation of one octave of value_noise (uniform lattice, quintic interpolation), measured.
_OCTAVE_STD = 0.4507


def fbm_grid(x: np.ndarray, y: np.ndarray, scales: tuple[float, ...], weights: tuple[float, ...], *key) -> np.ndarray:
    """Multi-scale noise on a grid, scaled to unit standard deviation (close to normal)."""
    total = sum(w * value_noise_grid(x, y, s, *key, i) for i, (s, w) in enumerate(zip(scales, weights)))
    return total / (_OCTAVE_STD * float(np.sqrt(np.sum(np.square(weights)))))


def _interpolation(points: np.ndarray, nodes: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    i = np.clip(np.floor((points - nodes[0]) / step).astype(np.int64), 0, nodes.size - 2)
    return i, (points - nodes[i]) / step


def fbm_grid_coarse(x: np.ndarray, y: np.ndarray, scales, weights, *key, step: float) -> np.ndarray:
    """`fbm_grid` sampled every `step` metres on the world lattice and interpolated bilinearly.

    Much cheaper for smooth fields (clouds); the lattice is world-aligned, so tiles still agree."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    nx = np.arange(np.floor(x.min() / step), np.floor(x.max() / step) + 2) * step
    ny = np.arange(np.floor(y.min() / step), np.floor(y.max() / step) + 2) * step
    coarse = fbm_grid(nx, ny, scales, weights, *key)
    i, w = _interpolation(y, ny, step)
    rows = coarse[i] * (1 - w)[:, None] + coarse[i + 1] * w[:, None]
    j, v = _interpolation(x, nx, step)
    return rows[:, j] * (1 - v) + rows[:, j + 1] * v


def fbm(x: np.ndarray, y: np.ndarray, scales: tuple[float, ...], weights: tuple[float, ...], *key) -> np.ndarray:
    """`fbm_grid` at scattered points."""
    total = sum(w * value_noise(x, y, s, *key, i) for i, (s, w) in enumerate(zip(scales, weights)))
    return total / (_OCTAVE_STD * float(np.sqrt(np.sum(np.square(weights)))))


def voronoi_cells(u: np.ndarray, v: np.ndarray, *key) -> tuple[np.ndarray, np.ndarray]:
    """The Voronoi cell of each point (u, v) over one jittered centre per unit lattice cell.

    Centres are hashed from their lattice index, so the partition is the same whichever region is
    asked; returns the lattice indices (i, j) of the nearest centre for every point."""
    margin = 2
    i = np.arange(int(np.floor(u.min())) - margin, int(np.floor(u.max())) + margin + 1)
    j = np.arange(int(np.floor(v.min())) - margin, int(np.floor(v.max())) + margin + 1)
    ii, jj = (a.ravel() for a in np.meshgrid(i, j))
    cu = ii + 0.1 + 0.8 * uniform(*key, "u", ii, jj)
    cv = jj + 0.1 + 0.8 * uniform(*key, "v", ii, jj)
    _, nearest = cKDTree(np.column_stack([cu, cv])).query(np.column_stack([u.ravel(), v.ravel()]))
    return ii[nearest].reshape(u.shape), jj[nearest].reshape(u.shape)
