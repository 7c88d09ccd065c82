rule features:
    input:
        stack=result("stacks/{tile}.nc"),
        clouds=result("clouds/{tile}.nc"),
    output:
        features=intermediate(result("features/{tile}.nc")),
        frames=result("frames/{tile}.json"),
    log:
        tile_log("features"),
    benchmark:
        result("benchmarks/features/{tile}.tsv")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=tile_mem_mb("features"),
        runtime=20,
    params:
        bands=config["features"]["bands"],
        indices=config["features"]["indices"],
        dates=config["dates"],
        valid_coverage_threshold=config["valid_coverage_threshold"],
    script:
        "../../scripts/features.py"
