"""The country the repository's projections are for: Slovenia, as config/slovenia.yaml maps it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def country_config() -> dict:
    """config/slovenia.yaml over the schema's defaults (as the Snakefile validates it), its AOI path absolute."""
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "slovenia.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    config["area"]["aoi"] = str(REPO / config["area"]["aoi"])
    return config


def country_tiles() -> int:
    """The tiles of the country's grid (260 of 10 km for Slovenia), made by the workflow's own function."""
    from landcover.config import area_grid

    return len(area_grid(country_config()))
