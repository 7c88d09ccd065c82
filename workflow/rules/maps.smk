rule merge:
    input:
        maps=maps_of(TILES),
    output:
        cog=report(result("landcover.tif"), caption="../report/map.rst", category="Map"),
        preview=report(
            result("landcover_preview.png"),
            caption="../report/preview.rst",
            category="Map",
        ),
        aux=result("landcover.tif.aux.xml"),
        qml=result("landcover.qml"),
    log:
        "logs/merge/merge.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        classes=CLASSES,
    script:
        "../../scripts/merge.py"


rule plot_tile:
    input:
        stack=result("stacks/{tile}.nc"),
        reference=result("reference/{tile}.tif"),
        map=result("maps/{tile}.tif"),
    output:
        png=report(
            result("plots/{tile}.png"),
            caption="../report/tile_plot.rst",
            category="Tiles",
            labels={"tile": "{tile}"},
        ),
    log:
        tile_log("plot_tile"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        classes=CLASSES,
        dpi=config["report"]["dpi"],
    script:
        "../../scripts/plot_tile.py"
