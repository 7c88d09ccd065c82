rule cloud_mask:
    input:
        stack=result("stacks/{tile}.nc"),
    output:
        clouds=result("clouds/{tile}.nc"),
    params:
        **config["clouds"],
    log:
        tile_log("cloud_mask"),
    benchmark:
        result("benchmarks/cloud_mask/{tile}.tsv")
    threads: 2
    resources:
        mem_mb=1500,
        runtime=30,
    conda:
        ENV
    script:
        "../../scripts/cloud_mask.py"
