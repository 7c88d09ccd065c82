rule grid:
    output:
        grid=result("grid.gpkg"),
    params:
        aoi=AREA["aoi"],
        bounds=area_bounds() if SOURCE == "synthetic" else None,
        tiles=TILES,
        **grid_params(),
    log:
        "logs/grid/grid.log",
    conda:
        ENV
    localrule: True
    script:
        "../../scripts/grid.py"
