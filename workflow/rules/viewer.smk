# The offline map viewer: results/map.html and its folder of pre-rendered tiles.


rule true_colour:
    input:
        stack=result("stacks/{tile}.nc"),
    output:
        rgb=result("true_colour/{tile}.tif"),
    log:
        tile_log("true_colour"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    script:
        "../../scripts/true_colour.py"


rule viewer:
    input:
        cog=result("landcover.tif"),
        maps=maps_of(TILES),
        confidence=[result(f"maps/{tile}_confidence.tif") for tile in TILES],
        reference=[result(f"reference/{tile}.tif") for tile in TILES],
        true_colour=[result(f"true_colour/{tile}.tif") for tile in TILES],
        plots=[result(f"plots/{tile}.png") for tile in PLOT_TILES],
        figures=[figure["src"] for figure in SEED_FIGURES],
        captions=[figure["caption"] for figure in SEED_FIGURES],
        reference_check=result("report/reference_check.gpkg"),
    output:
        html=result("map.html"),
        assets=directory(result("viewer")),
    log:
        "logs/viewer/viewer.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        classes=CLASSES,
        tiles=TILES,
        plot_tiles=PLOT_TILES,
        figures=[{"tile": figure["tile"]} for figure in SEED_FIGURES],
        logs="logs",
    script:
        "../../scripts/viewer.py"
