"""`landcover`: run the workflow, plan a tile grid or remove a killed run's lock without writing Snakemake
commands by hand.

`landcover run` needs the workflow's checkout (Snakefile, workflow/, scripts/, profiles/): found beside an
editable install (`pip install -e .`, what `make install` does), in the current directory, or named with
--workflow. `pip install .` alone installs the package, not the workflow."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def find_workflow(named: str | None) -> Path:
    """The checkout that holds the Snakefile: --workflow, else beside this package, else the current directory."""
    candidates = [Path(named)] if named else [REPO, Path.cwd()]
    for folder in candidates:
        if (folder / "Snakefile").is_file() and (folder / "workflow").is_dir():
            return folder.resolve()
    where = named or f"{REPO} (beside the installed package) or {Path.cwd()}"
    raise SystemExit(
        f"landcover run: no workflow checkout in {where}. The workflow is not part of the Python package: "
        "clone the repository and install it with `pip install -e .`, or pass --workflow <checkout>."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="landcover", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the Snakemake workflow (extra arguments go to snakemake)")
    run.add_argument("--configfile", help="a config beside config/config.yaml, e.g. config/slovenia.yaml")
    run.add_argument("--workflow", help="the workflow checkout (default: beside the package, or the current folder)")
    run.add_argument("--profile", help="default: the checkout's profiles/default")
    run.add_argument("--cores", default="all")

    unlock = commands.add_parser(
        "unlock",
        help="remove the Snakemake lock a killed run left, once no process of it can still be running",
        description="Removes .snakemake/locks of a working directory when no Snakemake run of this workflow is "
        "alive there on this machine and, where SLURM is installed, `squeue --me` lists no job working in it.",
    )
    unlock.add_argument("-d", "--directory", default=".", help="the run's working directory (default: here)")
    unlock.add_argument("--force", action="store_true", help="skip both checks (you have made sure yourself)")

    grid = commands.add_parser("grid", help="write the tile grid of an area of interest")
    grid.add_argument("aoi", help="GeoJSON or GeoPackage polygon, any CRS")
    grid.add_argument("--tile-size", type=float, help="metres (default: the schema's area.tile_size_m)")
    grid.add_argument("--resolution", type=float, help="metres per pixel (default: the schema's area.resolution_m)")
    grid.add_argument("--crs", default=None, help="default: the UTM zone of the area's centroid")
    grid.add_argument("-o", "--output", default="grid.gpkg")

    plan = commands.add_parser("plan", help="Sentinel Hub: tiles, catalogue days, requests and PU, before any download")
    plan.add_argument("--configfile", required=True, help="a config, e.g. config/slovenia-cdse.yaml")
    plan.add_argument("--no-catalog", action="store_true", help="assume one overpass day in five; ask nothing")
    plan.add_argument("--per-tile", action="store_true", help="one line per tile")

    args, extra = parser.parse_known_args(argv)
    if args.command == "plan":
        return _plan(args)
    if args.command == "run":
        workflow = find_workflow(args.workflow)
        profile = args.profile or str(workflow / "profiles" / "default")
        command = [sys.executable, "-m", "snakemake", "-s", str(workflow / "Snakefile"), "--profile", profile]
        command += ["--cores", str(args.cores)]
        if args.configfile:
            command += ["--configfile", args.configfile]
        return subprocess.call(command + extra)
    if extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    if args.command == "unlock":
        return unlock_directory(args.directory, args.force)
    from landcover.grid import make_grid, read_aoi, write_grid

    area = _schema_defaults()["area"]
    args.tile_size = args.tile_size or area["tile_size_m"]
    args.resolution = args.resolution or area["resolution_m"]
    tiles = make_grid(read_aoi(args.aoi), args.tile_size, args.resolution, crs=args.crs)
    write_grid(tiles, args.output)
    print(f"{len(tiles)} tiles of {args.tile_size:g} m in {tiles.crs} -> {args.output}")
    return 0


def _schema_defaults() -> dict:
    """The defaults of workflow/schemas/config.schema.yaml, as a config naming nothing gets them."""
    from snakemake.utils import validate

    config = {"area": {"source": "synthetic"}}
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def _plan(args: argparse.Namespace) -> int:
    """The plan of a configuration as the workflow reads it: `--configfile` over the schema's defaults."""
    import yaml
    from snakemake.utils import validate

    from landcover.config import area_crs, area_grid, margin_px
    from landcover.grid import tile_grid
    from landcover.ingest.sentinelhub_plan import format_plan, plan_tile

    config = yaml.safe_load(Path(args.configfile).read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    area, sh = config["area"], config.get("sentinelhub")
    if area["source"] != "sentinelhub" or not sh:
        print(f"{args.configfile}: area.source is {area['source']}; nothing to download from Sentinel Hub")
        return 0
    tiling = area_grid(config)
    size = (area["tile_size_m"], area["resolution_m"], area_crs(config, tiling))
    sh_config = None
    if not args.no_catalog:
        from landcover.ingest.sentinelhub import RequestPacer, overpass_days, search_catalog, sentinelhub_config

        pacer = RequestPacer(sh["requests_per_minute"], sh["processing_units_per_minute"])
        sh_config = sentinelhub_config(sh.get("base_url"), sh.get("token_url"), preset=sh.get("preset"))
        if not (sh_config.sh_client_id and sh_config.sh_client_secret):
            print(
                "No Sentinel Hub credentials (SH_CLIENT_ID/SH_CLIENT_SECRET or a profile): days bounded, not counted",
                file=sys.stderr,
            )
            sh_config = None
    margin = margin_px(config)
    plans = []
    for tile in tiling.tile_id:
        grid = tile_grid(tile, *size, margin)  # the tile's window grows by its margin
        if sh_config is None:
            plans.append(plan_tile(config, grid))
        else:
            # cached in sentinelhub.cache_dir: the download asks nothing twice
            times = search_catalog(grid, sh["time_range"], sh["maxcc"], sh_config, sh["cache_dir"], pacer)
            plans.append(plan_tile(config, grid, catalog_items=len(times), days=len(overpass_days(times))))
    print(format_plan(plans, per_tile=args.per_tile))
    return 0


def unlock_directory(directory: str, force: bool) -> int:
    from landcover.runlock import LockInUse, unlock

    try:
        removed = unlock(directory, force=force)
    except LockInUse as err:
        print(f"landcover unlock: not unlocked: {err}", file=sys.stderr)
        return 1
    where = os.path.abspath(directory)
    print(f"removed the stale lock of {where} ({len(removed)} file(s))" if removed else f"{where} was not locked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
