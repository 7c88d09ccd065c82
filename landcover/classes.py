"""The eo-learn land-cover nomenclature: ids, names and colours shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass

NO_DATA = 0


@dataclass(frozen=True)
class LandCoverClass:
    id: int
    name: str
    colour: str  # "#rrggbb"

    @property
    def rgb(self) -> tuple[int, int, int]:
        value = self.colour.lstrip("#")
        return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))


EOLEARN_CLASSES: tuple[LandCoverClass, ...] = (
    LandCoverClass(0, "no data", "#ffffff"),
    LandCoverClass(1, "cultivated land", "#ffff00"),
    LandCoverClass(2, "forest", "#054907"),
    LandCoverClass(3, "grassland", "#ffa500"),
    LandCoverClass(4, "shrubland", "#806000"),
    LandCoverClass(5, "water", "#069af3"),
    LandCoverClass(6, "wetlands", "#95d0fc"),
    LandCoverClass(7, "tundra", "#967bb6"),
    LandCoverClass(8, "artificial surface", "#dc143c"),
    LandCoverClass(9, "bareland", "#a6a6a6"),
    LandCoverClass(10, "snow and ice", "#000000"),
)


def classes_from_config(entries: list[dict]) -> tuple[LandCoverClass, ...]:
    """Classes as configured (`classes:` in config.yaml), sorted by id, no-data first."""
    classes = sorted(
        (LandCoverClass(int(e["id"]), str(e["name"]), str(e["colour"])) for e in entries), key=lambda c: c.id
    )
    if not classes or classes[0].id != NO_DATA:
        classes.insert(0, EOLEARN_CLASSES[0])
    return tuple(classes)
