# The eo-learn post's explanatory figures, in the report and in the map viewer's side panel.


rule class_evolution:
    input:
        samples=samples_of(TRAIN_TILES),
    output:
        png=report(
            result("figures/class_evolution.png"),
            caption="../report/class_evolution.rst",
            category="Figures",
            labels={
                "figure": "features per class through the year",
                "tile": "training tiles",
            },
        ),
    log:
        "logs/class_evolution/class_evolution.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        classes=CLASSES,
        features=config["features"]["bands"] + config["features"]["indices"],
        dpi=config["report"]["dpi"],
    script:
        "../../scripts/class_evolution.py"


rule tile_figures:
    input:
        stack=result("stacks/{tile}.nc"),
        clouds=result("clouds/{tile}.nc"),
        features=result("features/{tile}.nc"),
        reference=result("reference/{tile}.tif"),
    output:
        interpolation=report(
            result("figures/{tile}_interpolation.png"),
            caption="../report/interpolation.rst",
            category="Figures",
            labels={"figure": "temporal interpolation", "tile": "{tile}"},
        ),
        negative_buffer=report(
            result("figures/{tile}_negative_buffer.png"),
            caption="../report/negative_buffer.rst",
            category="Figures",
            labels={"figure": "negative buffer", "tile": "{tile}"},
        ),
    log:
        tile_log("tile_figures"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=tile_mem_mb("features"),  # it reads a features file like the features job writes
        runtime=10,
    params:
        classes=CLASSES,
        dpi=config["report"]["dpi"],
    script:
        "../../scripts/figures.py"
