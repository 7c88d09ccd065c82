rule predict:
    input:
        model=result("model/model.txt"),
        metadata=result("model/model.json"),
        features=result("features/{tile}.nc"),
    output:
        map=result("maps/{tile}.tif"),
        confidence=result("maps/{tile}_confidence.tif"),
    log:
        tile_log("predict"),
    benchmark:
        result("benchmarks/predict/{tile}.tsv")
    conda:
        ENV
    threads: config["threads"]["predict"]
    resources:
        mem_mb=tile_mem_mb("predict"),
        runtime=30,
    params:
        block_rows=config["predict"]["block_rows"],
        context_sigmas=config["features"]["context_sigmas"],
        classes=CLASSES,
    script:
        "../../scripts/predict.py"
