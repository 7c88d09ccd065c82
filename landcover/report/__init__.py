"""The validation report: `metrics` (the figures of metrics.json), `figures` (its PNGs), `page` (summary.html and
the writing of them all), `reference_check` (reference polygons the map contradicts with confidence)."""
