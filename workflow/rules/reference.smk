if eopatch_reference_raster():

    rule reference:
        input:
            stack=result("stacks/{tile}.nc"),
        output:
            reference=result("reference/{tile}.tif"),
        log:
            tile_log("reference"),
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        params:
            path=config["eopatch"]["path"],
            subtiles=config["eopatch"]["subtiles"],
            feature=eopatch_reference_raster(),
            class_ids=CLASS_IDS,
            erosion_radius=config["reference"]["erosion_radius"],
        script:
            "../../scripts/reference_eopatch.py"

else:

    rule reference:
        input:
            polygons=reference_polygons,
            stack=result("stacks/{tile}.nc"),
        output:
            reference=result("reference/{tile}.tif"),
        log:
            tile_log("reference"),
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        params:
            class_attribute=config["reference"]["class_attribute"],
            class_ids=CLASS_IDS,
            erosion_radius=config["reference"]["erosion_radius"],
        script:
            "../../scripts/reference.py"
