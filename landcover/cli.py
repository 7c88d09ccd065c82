"""`landcover`: run the workflow or plan a tile grid without writing Snakemake commands by hand."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="landcover", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the Snakemake workflow (extra arguments go to snakemake)")
    run.add_argument("--configfile", help="a config beside config/config.yaml, e.g. config/slovenia.yaml")
    run.add_argument("--profile", default=str(REPO / "profiles" / "default"))
    run.add_argument("--cores", default="all")

    grid = commands.add_parser("grid", help="write the tile grid of an area of interest")
    grid.add_argument("aoi", help="GeoJSON or GeoPackage polygon, any CRS")
    grid.add_argument("--tile-size", type=float, default=10000.0, help="metres")
    grid.add_argument("--resolution", type=float, default=10.0, help="metres per pixel")
    grid.add_argument("--crs", default=None, help="default: the UTM zone of the area's centroid")
    grid.add_argument("-o", "--output", default="grid.gpkg")

    args, extra = parser.parse_known_args(argv)
    if args.command == "run":
        command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", args.profile]
        command += ["--cores", str(args.cores)]
        if args.configfile:
            command += ["--configfile", args.configfile]
        return subprocess.call(command + extra)
    if extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    from landcover.grid import make_grid, read_aoi, write_grid

    tiles = make_grid(read_aoi(args.aoi), args.tile_size, args.resolution, crs=args.crs)
    write_grid(tiles, args.output)
    print(f"{len(tiles)} tiles of {args.tile_size:g} m in {tiles.crs} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
