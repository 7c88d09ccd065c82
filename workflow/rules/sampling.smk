rule sample:
    input:
        features=result("features/{tile}.nc"),
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
        context_sigmas=config["features"]["context_sigmas"],
    script:
        "../../scripts/sample.py"
