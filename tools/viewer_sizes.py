"""Sizes of the map viewer's page: as built by a run, and projected to a country's grid of tiles.

`python -m tools.viewer_sizes results/map.html` (after `make demo`) prints both; the README's viewer table is its
output. Not part of the workflow: it reads the page `landcover.viewer.build_viewer` wrote.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from landcover.viewer import TILE

VIEWPORT = (1280, 800)  # CSS pixels of the map area the page sizes are stated for


def _fit_level(width: int, height: int, res: float, levels: int, viewport=VIEWPORT) -> tuple[int, int]:
    """The pyramid level the page opens on (the whole map in view, as viewer.js's fit) and its tiles in view."""
    view_res = max(width * res / (viewport[0] - 20), height * res / (viewport[1] - 20))
    z = max(0, min(levels, math.ceil(levels - math.log2(view_res / res) - 1e-9)))
    span = TILE * 2 ** (levels - z)
    return z, math.ceil(width / span) * math.ceil(height / span)


def page_size(html_path) -> dict:
    """Bytes the page loads when opened (page, scripts, style, manifest; then the tiles of the first view) and on disk."""
    html_path = Path(html_path)
    manifest_js = next(html_path.parent.glob("*/manifest.js"))
    folder = manifest_js.parent
    manifest = json.loads(manifest_js.read_text().removeprefix("LCV.manifest(").rstrip().removesuffix(");"))
    page = sum(p.stat().st_size for p in (html_path, manifest_js, folder / "viewer.js", folder / "viewer.css"))
    z, _ = _fit_level(manifest["width"], manifest["height"], manifest["res"], manifest["levels"])
    first_view = sum(p.stat().st_size for p in (folder / "tiles" / str(z)).glob("*.js"))
    finest = list((folder / "tiles" / str(manifest["levels"])).glob("*.js"))
    info = list((folder / "info").iterdir())
    return {
        "page_bytes": page,
        "manifest_bytes": manifest_js.stat().st_size,
        "first_view_tile_bytes": first_view,
        "folder_bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) + html_path.stat().st_size,
        "pyramid_tiles": sum(len(level.split(",")) for level in manifest["present"] if level),
        "map_tiles": len(manifest["grid"]),
        # per full 256 x 256 tile: the finest level's bytes over the pixels they cover (edge tiles are partial)
        "bytes_per_full_tile": sum(p.stat().st_size for p in finest)
        * TILE**2
        / (manifest["width"] * manifest["height"]),
        "mean_info_bytes_per_map_tile": sum(p.stat().st_size for p in info) / len(manifest["grid"]),
        "width": manifest["width"],
        "height": manifest["height"],
    }


def projected_size(measured: dict, tiles: int | None = None, tile_pixels: int = 1000, res: float = 10.0) -> dict:
    """`page_size` for a country of `tiles` map tiles laid out in a near-square block, from the measured run.

    Page and manifest are exact for that layout (the manifest is built as build_viewer builds it); tile bytes are the
    measured bytes per full finest-level pyramid tile times the pyramid's tile count (every level's bounding box: an
    upper bound, as a country's corners hold no tiles)."""
    if tiles is None:
        from tools.country import country_tiles

        tiles = country_tiles()
    columns = math.ceil(math.sqrt(tiles))
    rows = math.ceil(tiles / columns)
    width, height = columns * tile_pixels, rows * tile_pixels
    levels = max(0, math.ceil(math.log2(max(width, height) / TILE)))
    counts = [math.ceil(width / (TILE * 2**f)) * math.ceil(height / (TILE * 2**f)) for f in range(levels, -1, -1)]
    size = tile_pixels * res
    grid = [
        {"id": f"x{i % columns:04d}_y{i // columns:04d}", "bounds": [i % columns * size, i // columns * size] * 2}
        for i in range(tiles)
    ]
    present = [
        ",".join(
            f"{x}_{y}"
            for y in range(math.ceil(height / (TILE * 2**f)))
            for x in range(math.ceil(width / (TILE * 2**f)))
        )
        for f in range(levels, -1, -1)
    ]
    manifest = len("LCV.manifest(" + json.dumps({"grid": grid, "present": present}, separators=(",", ":")) + ");\n")
    fixed = measured["manifest_bytes"] - measured["map_tiles"] * len(json.dumps(grid[0], separators=(",", ":")))
    manifest += max(0, fixed)  # classes, figures and the rest, the same for any grid (an overestimate)
    _, first_view_tiles = _fit_level(width, height, res, levels)
    tile_bytes = measured["bytes_per_full_tile"]
    return {
        "page_bytes": measured["page_bytes"] - measured["manifest_bytes"] + manifest,
        "manifest_bytes": manifest,
        "first_view_tile_bytes": round(first_view_tiles * tile_bytes),
        "folder_bytes": round(sum(counts) * tile_bytes + tiles * measured["mean_info_bytes_per_map_tile"]),
        "pyramid_tiles": sum(counts),
        "map_tiles": tiles,
        "width": width,
        "height": height,
    }


def table(html, tiles: int, tile_pixels: int = 1000) -> str:
    """What `main` prints: the page as built beside the country's projection."""
    measured = page_size(html)
    projected = projected_size(measured, tiles, tile_pixels)
    keys = ("page_bytes", "first_view_tile_bytes", "folder_bytes", "pyramid_tiles", "map_tiles", "width", "height")
    lines = [f"{'':24}{'this run':>14}{f'{tiles} tiles':>16}"]
    lines += [f"{key:24}{measured[key]:>14,}{projected[key]:>16,}" for key in keys]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Sizes of the map viewer's page: as built, and for a country.")
    parser.add_argument("html", help="the viewer page, e.g. results/map.html")
    parser.add_argument(
        "--tiles", type=int, help="map tiles of the projected country (default: config/slovenia.yaml's grid)"
    )
    parser.add_argument("--tile-pixels", type=int, default=1000, help="pixels across a map tile (10 km at 10 m)")
    parser.add_argument("--readme", help="also rewrite this README's viewer-sizes block with the table")
    args = parser.parse_args(argv)
    if args.tiles is None:
        from tools.country import country_tiles

        args.tiles = country_tiles()
    printed = table(args.html, args.tiles, args.tile_pixels)
    print(printed, end="")
    if args.readme:
        from tools.readme import write_blocks

        where = "make demo" if Path(args.html) == Path("results/map.html") else "the demo config's run"
        command = f"$ .venv/bin/python -m tools.viewer_sizes {args.html}   # after {where}"
        intro = (
            f"{args.tiles}-tile country (10 km tiles at 10 m, as Slovenia; its tile bytes scaled from this run's):\n\n"
        )
        write_blocks(args.readme, {"viewer-sizes": f"{intro}```\n{command}\n{printed}```\n"})


if __name__ == "__main__":
    main()
