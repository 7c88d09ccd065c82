"""Checks of the workflow configuration that a JSON schema cannot express."""

from __future__ import annotations

import datetime as dt


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the setting."""


def check(config: dict) -> None:
    dates = config["dates"]
    start, end = (dt.date.fromisoformat(str(dates[key])) for key in ("start", "end"))
    if end < start:
        raise ConfigError(f"dates.end ({end}) is before dates.start ({start})")
    source = config["area"]["source"]
    if source in ("local_l1c", "sentinelhub") and not config["area"].get("aoi"):
        raise ConfigError(f"area.aoi is required for area.source={source}")
    if source not in ("synthetic", "eopatch") and not config["reference"].get("path"):
        raise ConfigError(f"reference.path is required for area.source={source}")
    if source == "eopatch" and not (config["reference"].get("path") or config.get("eopatch", {}).get("reference")):
        raise ConfigError("eopatch.reference (a feature inside each patch) or reference.path is required")
    ids = [c["id"] for c in config["classes"]]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"classes: duplicate class ids {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    if len(ids) < 2:
        raise ConfigError("classes: at least two classes are needed")
    sampling = config["sampling"]
    if sampling.get("fraction") is not None and not 0 < sampling["fraction"] <= 1:
        raise ConfigError(f"sampling.fraction must be in (0, 1], got {sampling['fraction']}")


def merged(base: dict, delta: dict | None) -> dict:
    """`base` updated by `delta` as Snakemake merges a --configfile: nested mappings key by key, all else replaced."""
    out = dict(base)
    for key, value in (delta or {}).items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
