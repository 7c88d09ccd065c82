rule sample:
    input:
        features=result("features/{tile}.nc"),
        reference=result("reference/{tile}.tif"),
    output:
        samples=result("samples/{tile}.parquet"),
    params:
        **config["sampling"],
    log:
        tile_log("sample"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        ENV
    script:
        "../../scripts/sample.py"
