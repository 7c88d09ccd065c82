rule sample:
    input:
        features=model_features,
        reference=result("reference/{tile}.tif"),
    output:
        samples=result("samples/{tile}.parquet"),
    log:
        tile_log("sample"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=tile_mem_mb("sample"),
        runtime=10,
    params:
        **SAMPLING,
    script:
        "../../scripts/sample.py"
