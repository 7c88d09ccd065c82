rule reference:
    input:
        polygons=reference_polygons,
        stack=result("stacks/{tile}.nc"),
    output:
        reference=result("reference/{tile}.tif"),
    params:
        class_attribute=config["reference"]["class_attribute"],
        class_ids=CLASS_IDS,
        erosion_radius=config["reference"]["erosion_radius"],
    log:
        tile_log("reference"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        ENV
    script:
        "../../scripts/reference.py"
