"""landcover: Sentinel-2 land-cover classification, one tile at a time."""

__version__ = "0.1.0"
