"""features/<tile>.nc on disk, stored compactly (scaled int16, landcover.stack.COMPACT) and as float32 before it.

    PYTHONPATH=.. python feature_sizes.py [--size 1000] [--frames 70]

A synthetic tile (landcover.synthetic.synthesize_tile, `size` x `size` px at 10 m, cloud masks from its truth), its
features computed with the workflow's defaults and written both ways with landcover.stack.write (the same
compression and chunks); prints the two sizes and the largest difference between the values read back.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import inputs
import numpy as np
import xarray as xr

from landcover import stack
from landcover.features import tile_features
from landcover.synthetic import synthesize_tile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=70)
    args = parser.parse_args()
    raw, truth = synthesize_tile(inputs.grid(args.size), inputs.SEED, inputs.YEAR, args.frames)
    features = tile_features(raw, xr.Dataset({"cloud_mask": truth["cloud"] | truth["shadow"]}))
    del raw, truth
    with tempfile.TemporaryDirectory() as folder:
        compact, float32 = os.path.join(folder, "compact.nc"), os.path.join(folder, "float32.nc")
        stack.write(features, compact)
        stack.write(features.rename(features="features_float32"), float32)  # a name COMPACT does not list
        with stack.open(compact) as back:
            error = float(np.nanmax(np.abs(stack.load(back["features"]) - features["features"].values)))
        sizes = {name: os.path.getsize(path) for name, path in (("float32", float32), ("compact int16", compact))}
    for name, size in sizes.items():
        print(f"features.nc, {args.size} x {args.size} px, {name}: {size / 1e6:,.1f} MB")
    print(
        f"compact / float32: {sizes['compact int16'] / sizes['float32']:.2f}; largest |difference| read back: {error:.2e}"
    )


if __name__ == "__main__":
    main()
