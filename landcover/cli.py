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

    plan = commands.add_parser("plan", help="Sentinel Hub: tiles, catalogue days, requests and PU, before any download")
    plan.add_argument(
        "--configfile", required=True, help="a config over config/config.yaml, e.g. config/slovenia-cdse.yaml"
    )
    plan.add_argument("--no-catalog", action="store_true", help="assume one overpass day in five; ask nothing")
    plan.add_argument("--per-tile", action="store_true", help="one line per tile")

    args, extra = parser.parse_known_args(argv)
    if args.command == "plan":
        return _plan(args)
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


def _plan(args: argparse.Namespace) -> int:
    """The plan of a configuration as Snakemake would read it: config/config.yaml updated by `--configfile`."""
    import yaml

    from landcover.config import merged
    from landcover.grid import make_grid, read_aoi, tile_grid
    from landcover.ingest import sentinelhub

    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config = merged(default, yaml.safe_load(Path(args.configfile).read_text()))
    area, sh = config["area"], config.get("sentinelhub")
    if area["source"] != "sentinelhub" or not sh:
        print(f"{args.configfile}: area.source is {area['source']}; nothing to download from Sentinel Hub")
        return 0
    size = (area["tile_size_m"], area["resolution_m"], area["crs"])
    tiles = make_grid(read_aoi(area["aoi"]), *size, tiles=area["tiles"] or None).tile_id
    sh_config = None
    if not args.no_catalog:
        sh_config = sentinelhub.sentinelhub_config(sh.get("base_url"), sh.get("token_url"), preset=sh.get("preset"))
        if not (sh_config.sh_client_id and sh_config.sh_client_secret):
            print(
                "No Sentinel Hub credentials (SH_CLIENT_ID/SH_CLIENT_SECRET or a profile): days assumed",
                file=sys.stderr,
            )
            sh_config = None
    plans = [sentinelhub.plan_tile(config, tile_grid(tile, *size), sh_config=sh_config) for tile in tiles]
    print(sentinelhub.format_plan(plans, per_tile=args.per_tile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
