"""Outputs nothing reads again are Snakemake temp() files unless `keep_intermediates` is set."""

import pytest
from conftest import TINY_TILES, snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow

TILE = TINY_TILES[0]


@pytest.mark.parametrize("keep", [False, True])
def test_cloud_masks_and_features_are_deleted_once_read_unless_kept(tmp_path, keep):
    write_config(tmp_path, tiny_config(keep_intermediates=keep))
    target = f"results/samples/{TILE}.parquet"
    snakemake(tmp_path, target)
    results = tmp_path / "results"
    assert (results / "samples" / f"{TILE}.parquet").exists() and (results / "stacks" / f"{TILE}.nc").exists()
    assert (results / "clouds" / f"{TILE}.nc").exists() == keep
    assert (results / "features" / f"{TILE}.nc").exists() == keep
    # the deleted masks and features do not make the samples out of date
    again = snakemake(tmp_path, target, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr
