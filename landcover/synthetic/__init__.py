"""The embedded default data source: a seeded synthetic area of Slovenia with its truth.

Deterministic and tile-independent: each tile is generated alone from world coordinates and
(seed, date), so the landscape, the dates and the clouds continue across tile borders.
"""

from landcover.synthetic.landscape import land_cover_truth
from landcover.synthetic.reference import synthesize_reference
from landcover.synthetic.sky import acquisition_dates
from landcover.synthetic.tile import synthesize_tile

__all__ = ["acquisition_dates", "land_cover_truth", "synthesize_reference", "synthesize_tile"]
