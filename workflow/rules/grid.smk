rule grid:
    output:
        grid=result("grid.gpkg"),
    log:
        "logs/grid/grid.log",
    localrule: True
    conda:
        ENV
    params:
        **grid_params(),
        aoi=AREA["aoi"],
        bounds=area_bounds() if SOURCE == "synthetic" else None,
        tiles=TILES,
    script:
        "../../scripts/grid.py"
