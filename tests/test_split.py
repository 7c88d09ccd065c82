import pytest

from landcover.split import split_tiles, tile_hash


def test_listed_test_tiles_are_used():
    train, test = split_tiles(["a", "b", "c"], ["b"], 0.5, seed=1)
    assert (train, test) == (["a", "c"], ["b"])


def test_listed_tile_outside_grid_is_named():
    with pytest.raises(ValueError, match="x9_y9"):
        split_tiles(["a", "b"], ["x9_y9"], 0.5, seed=1)


def test_fraction_is_stable_when_tiles_are_added():
    tiles = [f"x{i:04d}_y0001" for i in range(200)]
    train, test = split_tiles(tiles, [], 0.3, seed=3)
    more_train, more_test = split_tiles(tiles + [f"x{i:04d}_y0002" for i in range(50)], [], 0.3, seed=3)
    assert set(test) <= set(more_test) and set(train) <= set(more_train)
    assert 0.2 < len(test) / len(tiles) < 0.4


def test_fraction_depends_on_seed():
    tiles = [f"t{i}" for i in range(100)]
    assert split_tiles(tiles, [], 0.3, seed=1)[1] != split_tiles(tiles, [], 0.3, seed=2)[1]
    assert tile_hash(1, "t1") == tile_hash(1, "t1")


def test_no_test_tile_is_an_error():
    with pytest.raises(ValueError, match="test_fraction"):
        split_tiles(["only"], [], 1e-9, seed=5)


def test_all_tiles_for_test_is_an_error():
    with pytest.raises(ValueError, match="no tile is left to train"):
        split_tiles(["a"], ["a"], 0.5, seed=1)
