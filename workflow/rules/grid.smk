rule grid:
    output:
        grid=result("grid.gpkg"),
    log:
        "logs/grid/grid.log",
    localrule: True
    conda:
        ENV
    params:
        area=AREA,
        synthetic=config["synthetic"] if SOURCE == "synthetic" else None,
    script:
        "../../scripts/grid.py"
