"""Which tiles train the model and which test it.

A tile's side is decided by a hash of (seed, tile id) alone, so adding tiles to the area never
moves an existing tile from one side to the other (and never retrains the model for it)."""

from __future__ import annotations

import zlib


def tile_hash(seed: int, tile_id: str) -> float:
    """A stable number in [0, 1) for this tile and seed."""
    return zlib.crc32(f"{seed}:{tile_id}".encode()) / 2**32


def split_tiles(
    tiles: list[str], test_tiles: list[str], test_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """(training tiles, test tiles): the configured list if given, else a seeded fraction."""
    tiles = sorted(tiles)
    if test_tiles:
        unknown = sorted(set(test_tiles) - set(tiles))
        if unknown:
            raise ValueError(f"split.test_tiles names tiles outside the grid: {', '.join(unknown)}")
        test = sorted(set(test_tiles))
    else:
        test = [t for t in tiles if tile_hash(seed, t) < test_fraction]
    train = [t for t in tiles if t not in test]
    if not train:
        raise ValueError("split: every tile is a test tile; no tile is left to train the model")
    if not test:
        raise ValueError(
            f"split: no test tile among {len(tiles)} tiles with split.test_fraction={test_fraction}; "
            "raise the fraction or list split.test_tiles"
        )
    return train, test
