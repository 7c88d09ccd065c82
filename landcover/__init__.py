"""landcover: Sentinel-2 land-cover classification, one tile at a time."""

import os

# LightGBM's OpenMP threads spin while they wait; when Snakemake runs jobs side by side on a few
# cores, spinning made training and s2cloudless up to 7 times slower (benchmarks/RESULTS.md).
# Set before any module loads the OpenMP runtime; an explicit setting by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
