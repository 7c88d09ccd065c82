"""Clear-sky top-of-atmosphere reflectance of the synthetic land surface on one date.

A pixel is a linear mixture of endmember spectra whose fractions follow each class's calendar:
crops sown and harvested per parcel, meadows mown, deciduous canopies leafing out and shedding.
Endmembers are L1C (TOA) reflectances calibrated on the real Slovenian scenes of the eo-learn test
patch (summer 2015 class medians: forest, grassland, shrubland, built-up): the atmosphere's path
radiance is why even dark targets have B01 near 0.1.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.special import ndtri

from landcover.synthetic.landscape import (
    ARTIFICIAL,
    BARELAND,
    CULTIVATED,
    FOREST,
    GRASSLAND,
    SHRUBLAND,
    WATER,
    WETLANDS,
    Landscape,
)
from landcover.synthetic.noise import uniform

# Bands:            B01    B02    B03    B04    B05    B06    B07    B08    B8A    B09    B10     B11    B12
# fmt: off
ENDMEMBERS = {
    "grass":      [0.100, 0.075, 0.076, 0.038, 0.102, 0.290, 0.360, 0.355, 0.400, 0.105, 0.0010, 0.180, 0.072],
    "crop":       [0.100, 0.074, 0.076, 0.038, 0.104, 0.295, 0.370, 0.370, 0.410, 0.107, 0.0010, 0.180, 0.073],
    "conifer":    [0.098, 0.068, 0.055, 0.031, 0.055, 0.155, 0.195, 0.190, 0.215, 0.070, 0.0009, 0.085, 0.036],
    "broadleaf":  [0.100, 0.072, 0.066, 0.034, 0.080, 0.255, 0.325, 0.315, 0.355, 0.092, 0.0010, 0.145, 0.057],
    "dry":        [0.125, 0.105, 0.115, 0.120, 0.150, 0.195, 0.215, 0.225, 0.245, 0.080, 0.0010, 0.290, 0.200],
    "shade":      [0.090, 0.060, 0.045, 0.028, 0.030, 0.040, 0.045, 0.045, 0.050, 0.020, 0.0008, 0.020, 0.010],
    "litter":     [0.104, 0.080, 0.076, 0.074, 0.090, 0.125, 0.142, 0.148, 0.162, 0.052, 0.0009, 0.178, 0.115],
    "soil_dark":  [0.110, 0.090, 0.092, 0.100, 0.115, 0.125, 0.135, 0.140, 0.150, 0.050, 0.0009, 0.205, 0.170],
    "soil_light": [0.135, 0.120, 0.135, 0.155, 0.175, 0.190, 0.200, 0.205, 0.215, 0.070, 0.0010, 0.300, 0.250],
    "roof":       [0.145, 0.130, 0.130, 0.140, 0.150, 0.162, 0.172, 0.176, 0.186, 0.066, 0.0010, 0.218, 0.195],
    "asphalt":    [0.115, 0.095, 0.090, 0.090, 0.095, 0.105, 0.110, 0.115, 0.120, 0.042, 0.0009, 0.135, 0.120],
    "water":      [0.095, 0.068, 0.058, 0.036, 0.032, 0.024, 0.021, 0.019, 0.017, 0.007, 0.0008, 0.009, 0.006],
    "gravel":     [0.170, 0.165, 0.180, 0.195, 0.215, 0.235, 0.245, 0.250, 0.260, 0.085, 0.0010, 0.320, 0.260],
    "flowers":    [0.110, 0.085, 0.120, 0.100, 0.170, 0.300, 0.350, 0.360, 0.400, 0.100, 0.0010, 0.210, 0.100],
}
# fmt: on
NAMES = tuple(ENDMEMBERS)
SPECTRA = np.array([ENDMEMBERS[n] for n in NAMES], dtype=np.float32)  # (endmember, band)
_INDEX = {n: i for i, n in enumerate(NAMES)}

# Fresh snow: bright in the visible, dark in SWIR; at 1375 nm (B10) lowland snow is as dark as land,
# the water vapour above it absorbs (which is how cloud detectors tell snow from cloud).
SNOW = np.array(
    [0.780, 0.760, 0.740, 0.720, 0.710, 0.690, 0.670, 0.640, 0.620, 0.280, 0.0010, 0.050, 0.040], dtype=np.float32
)

# Bands that share a per-parcel brightness factor: visible+red edge, NIR, SWIR (B10 is left alone).
BAND_GROUP = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2])


N_UNIFORMS = 12  # per unit: 0-8 calendar and composition, 9-11 brightness of the band groups
LAG_PER_RELIEF = 7.0  # days by which spring comes later (and autumn earlier) per unit of relief


def _sig(t: float, t0, width) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(t - t0) / width))


def _after(t: float, t0) -> np.ndarray:
    return (t >= t0).astype(np.float32)


def _leaves(t: float, start, end) -> np.ndarray:
    return _sig(t, start, 6) * (1 - _sig(t, end, 7))


def _grass_green(t: float, u: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """Green share of a meadow before mowing: frost-browned in winter, flush in May, summer drought."""
    low, high = 0.22 + 0.2 * u[2], 0.82 + 0.12 * u[3]
    season = _sig(t, 85 + 20 * u[0] + lag, 10) * (1 - _sig(t, 295 + 20 * u[1] - lag, 12))
    return (low + (high - low) * season) * (1 - 0.05 * np.exp(-(((t - 215) / 20) ** 2)))


def _mown(t: float, green: np.ndarray, cuts, first, interval, depth: float = 0.55) -> np.ndarray:
    """Green share after `cuts` (up to 4) cuts from day `first` every `interval` days, none after mid-October."""
    for k in range(4):
        mown = first + k * interval
        hit = (k < cuts) & (t >= mown) & (mown < 285)
        green = np.where(hit, green * (1 - depth * np.exp(-(t - mown) / 16)), green)
    return green


def _grassland(t: float, u: np.ndarray, lag: np.ndarray, f: dict) -> None:
    """Meadows mown 2-4 times, extensive meadows cut once in summer, grazed pastures, and abandoned
    meadows that shrubs overgrow (u[4] picks the use)."""
    pasture, extensive, abandoned = u[4] < 0.25, (u[4] >= 0.25) & (u[4] < 0.4), (u[4] >= 0.4) & (u[4] < 0.5)
    cuts = np.where(pasture | abandoned, 0, np.where(extensive, 1, 2 + np.floor(3 * u[5]).astype(int)))
    first = np.where(extensive, 175 + 30 * u[6], 130 + 35 * u[6]) + lag
    green = _mown(t, _grass_green(t, u, lag), cuts, first, 38 + 20 * u[7])
    green = np.where(pasture, green * 0.92, green)
    woody = np.where(abandoned, 0.1 + 0.25 * u[8], 0.0)
    leaves = _leaves(t, 110 + 10 * u[0] + lag, 285 + 10 * u[1] - lag)
    f["broadleaf"] += woody * leaves
    f["litter"] += woody * (1 - leaves)
    f["grass"] += (1 - woody) * green
    f["dry"] += (1 - woody) * 0.75 * (1 - green)
    f["soil_dark"] += (1 - woody) * 0.25 * (1 - green)


def _cultivated(t: float, u: np.ndarray, lag: np.ndarray, f: dict) -> None:
    """Six crop calendars, each parcel with its own dates (u[0] picks the crop); spring work waits
    for the warmth a little longer uphill."""
    crop = np.searchsorted(np.array([0.23, 0.47, 0.54, 0.63, 0.72]), u[0], side="right")
    green, dry, bloom, grass = (np.zeros(u.shape[1], dtype=np.float32) for _ in range(4))
    spring = 0.5 * lag

    def put(sel, g, d, y=0.0):
        green[sel], dry[sel] = np.asarray(g)[sel] if np.ndim(g) else g, np.asarray(d)[sel] if np.ndim(d) else d
        if np.ndim(y):
            bloom[sel] = np.asarray(y)[sel]

    # 0: winter cereal: tillered over winter, ripe late June, harvested in July, stubble then ploughed.
    ripe = 160 + 15 * u[2] + spring
    harvest = ripe + 18 + 10 * u[3]
    plough = harvest + 10 + 30 * u[5]
    cover = np.maximum(0.2 + 0.15 * _sig(t, 40, 15), 0.95 * _sig(t, 100 + 10 * u[4] + spring, 9))
    g = cover * (1 - _sig(t, ripe, 6))
    catch = (u[6] < 0.4) * 0.7 * _sig(t, plough + 35, 8)
    autumn = 0.25 * _sig(t, 305 + 15 * u[1], 8)
    before = _after(-t, -harvest)  # 1 before harvest
    stubble = _after(t, harvest) * (1 - _after(t, plough))
    put(crop == 0, before * g + (1 - before) * np.maximum(catch, autumn), before * (cover - g) + stubble * 0.55)

    # 1: maize: stubble till ploughing in spring, sown late April to May, harvested Sept/Oct.
    plough = 95 + 25 * u[1] + spring
    sow = plough + 10 + 10 * u[2]
    cover = 0.95 * _sig(t, sow + 45, 8)
    senesce = sow + 115 + 15 * u[3]
    harvest = senesce + 20 + 25 * u[4]
    g = cover * (1 - _sig(t, senesce, 8))
    growing = _after(t, plough) * (1 - _after(t, harvest))
    winter_cover = (u[5] < 0.5) * (0.15 + 0.25 * u[6]) * (1 - _after(t, plough))
    put(crop == 1, growing * g + winter_cover, growing * (cover - g) + (1 - growing) * 0.35)

    # 2: oilseed rape: green all winter, yellow in April, harvested early July, resown late August.
    bloom_day = 110 + 10 * u[2] + spring
    harvest = 180 + 10 * u[4]
    resow = 235 + 15 * u[5]
    cover = 0.5 + 0.45 * _sig(t, 70, 10)
    flowers = 0.55 * np.exp(-(((t - bloom_day) / 9) ** 2))
    ripe = _sig(t, 160 + 8 * u[3], 6)
    before = _after(-t, -harvest)
    put(
        crop == 2,
        before * cover * (1 - flowers) * (1 - ripe) + (1 - before) * 0.65 * _sig(t, resow + 30, 10),
        before * cover * ripe + (1 - before) * (1 - _after(t, resow)) * 0.5,
        before * cover * flowers * (1 - ripe),
    )

    # 3: spring cereal / soybean: sown March-April, harvested July-August.
    sow = 75 + 20 * u[1] + spring
    cover = 0.9 * _sig(t, sow + 40, 8)
    ripe = sow + 95 + 10 * u[2]
    harvest = ripe + 15 + 10 * u[3]
    g = cover * (1 - _sig(t, ripe, 6))
    growing = _after(t, sow) * (1 - _after(t, harvest))
    after = _after(t, harvest)
    put(
        crop == 3,
        growing * g + after * (u[6] < 0.5) * 0.6 * _sig(t, harvest + 40, 8),
        growing * (cover - g) + after * 0.3,
    )

    # 4: vegetables / potatoes: two short crops, bare soil in between.
    sow1 = 95 + 20 * u[1] + spring
    harvest1 = sow1 + 90 + 20 * u[2]
    sow2 = harvest1 + 10
    harvest2 = sow2 + 75 + 15 * u[3]
    g = 0.8 * _sig(t, sow1 + 30, 7) * (1 - _after(t, harvest1)) + 0.7 * _sig(t, sow2 + 30, 7) * _after(t, sow2) * (
        1 - _after(t, harvest2)
    )
    put(crop == 4, g, 0.05 * np.ones_like(g))

    # 5: grass-clover ley in the rotation: a meadow to the eye, mown four times from early May.
    ley = crop == 5
    mown = _mown(t, _grass_green(t, u, lag), 4, 120 + 20 * u[6] + lag, 33 + 10 * u[7], depth=0.65)
    grass[ley] = mown[ley]
    put(ley, 0.0, 0.75 * (1 - mown))

    f["crop"] += green
    f["grass"] += grass
    f["dry"] += dry
    f["flowers"] += bloom
    soil = np.clip(1 - green - grass - dry - bloom, 0, 1)
    f["soil_dark"] += soil * (1 - 0.7 * u[7])
    f["soil_light"] += soil * 0.7 * u[7]


def _winter(t: float) -> float:
    """0 at the summer solstice, 1 at the winter one: how low the sun stands."""
    return 0.5 * (1 - np.cos(2 * np.pi * (t - 172) / 365.0))


def _forest(t: float, u: np.ndarray, lag: np.ndarray, conifer: np.ndarray, young: np.ndarray, f: dict) -> None:
    # Under a low winter sun the crowns shade each other: darker, lower NDVI (as in the real patch).
    canopy = np.where(young, 0.65, 0.92) * (1 - 0.3 * _winter(t))
    f["shade"] += np.where(young, 0.65, 0.92) - canopy
    conifer = np.where(young, 0.5 * conifer, conifer)
    leaves = _leaves(t, 110 + 12 * u[0] + lag, 290 + 15 * u[1] - lag)
    under = _grass_green(t, u, lag)
    f["conifer"] += canopy * conifer
    f["broadleaf"] += canopy * (1 - conifer) * leaves
    f["litter"] += canopy * (1 - conifer) * (1 - leaves) + (1 - canopy) * (1 - under)
    f["grass"] += (1 - canopy) * under


def _shrubland(t: float, u: np.ndarray, lag: np.ndarray, conifer: np.ndarray, mantle: np.ndarray, f: dict) -> None:
    """Scrub of varying density, densest in the mantle along forest edges; some of it juniper and pine."""
    woody = np.where(mantle, 0.7 + 0.2 * u[8], 0.4 + 0.4 * u[8])
    evergreen = 0.4 * conifer * u[7]
    leaves = _leaves(t, 108 + 10 * u[0] + lag, 282 + 10 * u[1] - lag)
    under = _grass_green(t, u, lag)
    f["conifer"] += woody * evergreen
    f["broadleaf"] += woody * (1 - evergreen) * leaves
    f["litter"] += woody * (1 - evergreen) * (1 - leaves)
    f["grass"] += (1 - woody) * under
    f["dry"] += (1 - woody) * (1 - under)


def _wetlands(t: float, u: np.ndarray, lag: np.ndarray, f: dict) -> None:
    """Reed beds: flooded in spring, green in summer, standing dead reed in winter, some nearly open
    water; a third are wet meadows, flooded in spring and cut once in late summer."""
    meadow = u[7] < 0.35
    flood = np.exp(-(((t - 90) / 35) ** 2))
    water = np.where(meadow, 0.3 * flood * u[8], (0.1 + 0.35 * flood) * (0.5 + 1.1 * u[8]))
    reed = 0.65 * _sig(t, 130 + 10 * u[0] + lag, 10) * (1 - _sig(t, 275 + 10 * u[1] - lag, 10))
    grass = _mown(t, _grass_green(t, u, lag), meadow.astype(int), 210 + 30 * u[6], 40, depth=0.5)
    green = np.minimum(np.where(meadow, grass, reed), 1 - water)
    f["water"] += water
    f["grass"] += green
    f["dry"] += 1 - water - green


def _artificial(t: float, u: np.ndarray, builtup: np.ndarray, f: dict) -> None:
    asphalt = 0.2 + 0.5 * u[8]
    garden = 0.35 + 0.5 * _sig(t, 95, 10) * (1 - _sig(t, 300, 12))
    f["roof"] += builtup * (1 - asphalt)
    f["asphalt"] += builtup * asphalt
    f["grass"] += (1 - builtup) * garden
    f["dry"] += (1 - builtup) * (1 - garden)


def _bareland(t: float, u: np.ndarray, f: dict) -> None:
    green = 0.03 + 0.07 * u[8] * _leaves(t, 110, 280)
    f["gravel"] += 0.92 - green
    f["grass"] += green
    f["dry"] += 0.08


def _water(t: float, u: np.ndarray, depth: np.ndarray, turbidity: float, f: dict) -> None:
    """Open water; towards the shore the bottom shows through and water plants grow in summer."""
    plants = (1 - depth) * (0.05 + 0.2 * u[8]) * _leaves(t, 140, 270)
    bottom = 0.1 * (1 - depth)
    clear = 1 - plants - bottom
    f["water"] += clear * (1 - turbidity)
    f["soil_light"] += clear * turbidity
    f["soil_dark"] += bottom
    f["grass"] += plants


class _Fractions(dict):
    """Endmember name -> fractions of the pixels of one class; zeros until first used."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def __missing__(self, name: str) -> np.ndarray:
        self[name] = np.zeros(self.size, dtype=np.float32)
        return self[name]


class Surface:
    """The clear-sky reflectance model of one (padded) tile, prepared once for all its dates.

    It works on the landscape's components (the parts of parcels inside pixels), sorted by class so
    that each class's calendar works on contiguous slices; their area shares blend them into pixels."""

    def __init__(self, land: Landscape, seed: int, resolution: float):
        self.seed = seed
        self.shape = land.land_cover.shape
        parts = land.parts
        order = np.argsort(parts.cover, kind="stable")
        self.keys, inverse = np.unique(parts.unit, return_inverse=True)
        self.unit = inverse[order]
        uniforms = uniform(seed, "unit", np.arange(N_UNIFORMS)[:, None], self.keys[None, :])
        self.uniforms = uniforms[:, self.unit].astype(np.float32)
        self.lag = (LAG_PER_RELIEF * parts.relief[order]).astype(np.float32)
        self.conifer, self.builtup, self.depth = parts.conifer[order], parts.builtup[order], parts.depth[order]
        self.young, self.mantle = parts.young[order], parts.mantle[order]
        cover = parts.cover[order]
        classes, starts = np.unique(cover, return_index=True)
        unknown = set(classes.tolist()) - set(_MODELS)
        if unknown:
            raise ValueError(f"no surface model for land-cover class(es) {sorted(unknown)}")
        self.blocks = [(int(c), slice(a, b)) for c, a, b in zip(classes, starts, list(starts[1:]) + [cover.size])]
        pixels = self.shape[0] * self.shape[1]
        self.blend = sparse.csr_matrix(
            (parts.share[order], (parts.pixel[order], np.arange(order.size))), (pixels, order.size)
        )
        # Parcel brightness, +-15% per band group.
        self.brightness = (1 + 0.3 * (self.uniforms[9:12] - 0.5))[BAND_GROUP].T.copy()
        self.texture = self._texture(land, resolution)

    def _texture(self, land: Landscape, resolution: float) -> np.ndarray:
        """Fixed pixel texture gain (pixel, band), hashed from the global pixel index so that it
        continues across tile borders."""
        col = np.floor(land.x / resolution).astype(np.int64)[None, :]
        row = np.floor(land.y / resolution).astype(np.int64)[:, None]
        common = ndtri(0.001 + 0.998 * uniform(self.seed, "texture", col, row)).ravel()
        gain = np.empty((common.size, SPECTRA.shape[1]), dtype=np.float32)
        for group in range(3):
            own = ndtri(0.001 + 0.998 * uniform(self.seed, "texture", group, col, row)).ravel()
            gain[:, BAND_GROUP == group] = (1 + 0.03 * common + 0.015 * own)[:, None]
        return gain

    def fractions(self, doy: float, turbidity: float) -> np.ndarray:
        """Endmember fractions (endmember, component), components in class order."""
        out = np.zeros((len(NAMES), self.uniforms.shape[1]), dtype=np.float32)
        for cls, block in self.blocks:
            f = _Fractions(block.stop - block.start)
            _MODELS[cls](self, block, doy, turbidity, f)
            for name, values in f.items():
                out[_INDEX[name], block] = values
        return out

    def reflectance(self, day: int, doy: float, turbidity: float) -> np.ndarray:
        """Clear-sky TOA reflectance (ny, nx, band) float32 on `day` (days since 1970).

        Each parcel also varies from date to date (soil moisture, dew, view angle): +-16% overall
        and +-10% in the near infrared, which a single date cannot average out."""
        # einsum rather than a BLAS product: no thread pool to fight the other jobs for.
        mix = np.einsum("kn,kb->nb", self.fractions(doy, turbidity), SPECTRA)
        mix *= self.brightness
        overall = 0.84 + 0.32 * uniform(self.seed, "jitter", day, self.keys).astype(np.float32)
        nir = 0.9 + 0.2 * uniform(self.seed, "jitter-nir", day, self.keys).astype(np.float32)
        mix *= overall[self.unit][:, None]
        mix[:, BAND_GROUP == 1] *= nir[self.unit][:, None]
        pixels = np.asarray(self.blend @ mix, dtype=np.float32)
        pixels *= self.texture
        return pixels.reshape(self.shape + (SPECTRA.shape[1],))


_MODELS = {
    CULTIVATED: lambda m, b, t, _, f: _cultivated(t, m.uniforms[:, b], m.lag[b], f),
    FOREST: lambda m, b, t, _, f: _forest(t, m.uniforms[:, b], m.lag[b], m.conifer[b], m.young[b], f),
    GRASSLAND: lambda m, b, t, _, f: _grassland(t, m.uniforms[:, b], m.lag[b], f),
    SHRUBLAND: lambda m, b, t, _, f: _shrubland(t, m.uniforms[:, b], m.lag[b], m.conifer[b], m.mantle[b], f),
    WATER: lambda m, b, t, turbidity, f: _water(t, m.uniforms[:, b], m.depth[b], turbidity, f),
    WETLANDS: lambda m, b, t, _, f: _wetlands(t, m.uniforms[:, b], m.lag[b], f),
    ARTIFICIAL: lambda m, b, t, _, f: _artificial(t, m.uniforms[:, b], m.builtup[b], f),
    BARELAND: lambda m, b, t, _, f: _bareland(t, m.uniforms[:, b], f),
}
