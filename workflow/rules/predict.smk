rule compile_model:
    input:
        model=result("model/model.txt"),
    output:
        compiled=result("model/model_compiled.o"),
        sidecar=result("model/model_compiled.json"),
    log:
        "logs/compile_model/compile_model.log",
    benchmark:
        result("benchmarks/compile_model/compile_model.tsv")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../../scripts/compile_model.py"


rule predict:
    input:
        model=result("model/model.txt"),
        metadata=result("model/model.json"),
        features=result("features/{tile}.nc"),
        compiled=COMPILED_MODEL,
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
