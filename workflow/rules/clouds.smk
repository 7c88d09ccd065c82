rule cloud_mask:
    input:
        stack=result("stacks/{tile}.nc"),
    output:
        clouds=intermediate(result("clouds/{tile}.nc")),
    log:
        tile_log("cloud_mask"),
    benchmark:
        result("benchmarks/cloud_mask/{tile}.tsv")
    conda:
        ENV
    threads: config["threads"]["cloud_mask"]
    resources:
        mem_mb=tile_mem_mb("cloud_mask"),
        runtime=30,
    params:
        **config["clouds"],
    script:
        "../../scripts/cloud_mask.py"
