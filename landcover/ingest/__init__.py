"""Sources of raw tile stacks (the `stack.nc` format of `landcover.stack`) from real Sentinel-2 data.

- `eopatch`: eo-learn EOPatch folders, read with numpy and json only;
- `local_l1c`: Sentinel-2 L1C products (SAFE folders or loose band files) on disk;
- `sentinelhub`: the Sentinel Hub Catalog and Process APIs;
- `stac`: Sentinel-2 L2A COGs of a public STAC API, with cloud masks from the Scene Classification Layer.

Besides ``bands`` and ``is_data`` a source may add what it already has, so later stages can skip work:
``cloud_probability`` (time, y, x) float32 0..1 and ``cloud_mask`` (time, y, x) bool (precomputed
cloud products, used instead of s2cloudless), and ``indices`` (time, y, x, index) float32 with an
``index`` coordinate (precomputed indices such as NDVI; ``bands`` may then have no bands at all).

A source that drops frames counts them per reason in ``attrs["dropped_frames"]`` (JSON {reason: count}), which
the features stage carries into ``frames/<tile>.json`` for the validation report (`landcover.frames`).
"""

from __future__ import annotations

from landcover.stack import StackError

NO_DATA_ON_TILE = "no data on the tile (outside the swath)"


class IngestError(StackError):
    """Source data that is missing, corrupt or inconsistent; the message names the file or product."""
