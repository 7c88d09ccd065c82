"""The real data the repository carries: every file present and unchanged (data/SHA256SUMS)."""

import hashlib

import pytest

pytestmark = pytest.mark.realdata


def test_every_file_matches_its_checksum(real_data):
    for line in (real_data / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((real_data / name).read_bytes()).hexdigest() == digest, name


def test_nothing_is_read_from_outside_the_repository(real_data):
    """No config, rule, script or test names the folder beside the checkout."""
    repo = real_data.parent
    outside = "../" + "shared"
    for pattern in (
        "config/*.yaml",
        "profiles/*/*.yaml",
        "workflow/**/*.smk",
        "scripts/*.py",
        "tests/*.py",
        "landcover/**/*.py",
    ):
        for path in repo.glob(pattern):
            assert outside not in path.read_text(), path
    assert (real_data.parent / "data" / "README.md").exists()
