"""The per-tile file format: the codec and chunks stages rely on, and damage that must not pass silently."""

from __future__ import annotations

import h5py
import hdf5plugin
import numpy as np
import pytest

from landcover import stack
from landcover.grid import tile_grid

GRID = tile_grid("x0457_y5097", 1000, 10, "EPSG:32633")  # 100 x 100 px: two row blocks


def raw_stack(n_times=6):
    rng = np.random.default_rng(0)
    bands = rng.integers(200, 4000, (n_times, GRID.height, GRID.width, 13), dtype=np.uint16)
    times = np.datetime64("2017-01-05T10:00") + np.arange(n_times) * np.timedelta64(40, "D")
    return stack.new_stack(bands, bands[..., 0] > 1000, times, stack.L1C_BANDS, GRID)


def test_tile_files_are_blosc_compressed_checksummed_and_chunked_by_rows_and_frames(tmp_path):
    raw = raw_stack()
    stack.write(raw, tmp_path / "stack.nc")
    with h5py.File(tmp_path / "stack.nc") as f:
        bands = f["bands"]
        assert str(hdf5plugin.BLOSC_ID) in bands._filters and bands.fletcher32
        assert bands.chunks == (stack.TIME_CHUNK, stack.ROW_CHUNK, GRID.width, 13)
        assert f["is_data"].chunks == (stack.TIME_CHUNK, stack.ROW_CHUNK, GRID.width)
    with stack.open(tmp_path / "stack.nc", required=("bands", "is_data")) as ds:
        np.testing.assert_array_equal(stack.load(ds["bands"]), raw["bands"].values)
        np.testing.assert_array_equal(stack.load(ds["is_data"]), raw["is_data"].values)
        assert stack.grid_of(ds) == GRID


def test_a_single_changed_byte_in_a_chunk_is_an_error_not_wrong_values(tmp_path):
    path = tmp_path / "stack.nc"
    stack.write(raw_stack(), path)
    with h5py.File(path) as f:
        chunk = f["bands"].id.get_chunk_info(1)
    data = bytearray(path.read_bytes())
    data[chunk.byte_offset + chunk.size // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with stack.open(path) as ds, pytest.raises(stack.StackError, match=r"variable 'bands' cannot be read, the file"):
        stack.load(ds["bands"])
