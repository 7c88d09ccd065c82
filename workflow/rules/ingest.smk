# One rule per source; each writes the same raw tile stack (landcover/stack.py).


if SOURCE == "synthetic":

    rule synthesize_tile:
        output:
            stack=result("stacks/{tile}.nc"),
            truth=result("truth/{tile}.nc"),
        log:
            tile_log("synthesize_tile"),
        benchmark:
            result("benchmarks/synthesize_tile/{tile}.tsv")
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1500,
            runtime=20,
        params:
            **grid_params(),
            margin_px=margin_px(),
            seed=config["synthetic"]["seed"],
            year=config["synthetic"]["year"],
            acquisitions=config["synthetic"]["acquisitions"],
        script:
            "../../scripts/synthesize_tile.py"

    rule synthesize_reference:
        output:
            reference=result("synthetic/reference/{tile}.gpkg"),
        log:
            tile_log("synthesize_reference"),
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        params:
            **grid_params(),
            tiles=lambda wildcards: [wildcards.tile],
            seed=config["synthetic"]["seed"],
        script:
            "../../scripts/synthesize_reference.py"

elif SOURCE == "eopatch":

    rule ingest_eopatch:
        output:
            stack=result("stacks/{tile}.nc"),
        log:
            tile_log("ingest_eopatch"),
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            path=config["eopatch"]["path"],
            band_feature=config["eopatch"]["band_feature"],
            band_names=config["eopatch"]["band_names"],
            index_features=config["eopatch"]["index_features"],
            subtiles=config["eopatch"]["subtiles"],
            cloud_products=config["eopatch"]["cloud_products"],
            margin_px=margin_px(),
        script:
            "../../scripts/ingest_eopatch.py"

elif SOURCE == "local_l1c":

    rule ingest_local_l1c:
        output:
            stack=result("stacks/{tile}.nc"),
        log:
            tile_log("ingest_local_l1c"),
        benchmark:
            result("benchmarks/ingest_local_l1c/{tile}.tsv")
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            **grid_params(),
            margin_px=margin_px(),
            path=config["local_l1c"]["path"],
            bands=config["local_l1c"]["bands"],
            time_range=config["local_l1c"]["time_range"],
        script:
            "../../scripts/ingest_local_l1c.py"

elif SOURCE == "stac":

    rule ingest_stac:
        output:
            stack=result("stacks/{tile}.nc"),
        log:
            tile_log("ingest_stac"),
        benchmark:
            result("benchmarks/ingest_stac/{tile}.tsv")
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=60,
        params:
            **grid_params(),
            margin_px=margin_px(),
            url=config["stac"]["url"],
            collection=config["stac"]["collection"],
            time_range=config["stac"]["time_range"],
            max_cloud_cover=config["stac"]["max_cloud_cover"],
            bands=config["stac"]["bands"] or config["features"]["bands"],
            cloud_mask=config["stac"]["cloud_mask"],
            probability_asset=config["stac"]["probability_asset"],
            probability_threshold=config["stac"]["probability_threshold"],
            sign=config["stac"]["sign"],
        script:
            "../../scripts/ingest_stac.py"

elif SOURCE == "sentinelhub":
    # The feature bands on the tile grid and the s2cloudless bands at the cloud resolution, several
    # days per Process API request (landcover/ingest/sentinelhub.py; the plan: sentinelhub_plan.py).
    if workflow.is_main_process:
        log_sentinelhub_plan()

    rule download_sentinelhub:
        output:
            stack=result("stacks/{tile}.nc"),
        log:
            tile_log("download_sentinelhub"),
        # 429 (up to sentinelhub.max_wait_s a wait) and 5xx are retried inside, a 401 gets a fresh token;
        # what still fails is permanent (credentials, quota, a refused request) and is not sent again
        # (profiles/slurm's `retries` does not apply). `sentinelhub=1`: the profiles cap downloads at once.
        retries: 0
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=sentinelhub_mem_mb,
            runtime=60,
            sentinelhub=1,
        params:
            **grid_params(),
            margin_px=margin_px(),
            time_range=config["sentinelhub"]["time_range"],
            maxcc=config["sentinelhub"]["maxcc"],
            bands=sentinelhub_bands,
            cloud_resolution_m=config["clouds"]["resolution_m"],
            cache_dir=config["sentinelhub"]["cache_dir"],
            preset=config["sentinelhub"]["preset"],
            base_url=config["sentinelhub"]["base_url"],
            token_url=config["sentinelhub"]["token_url"],
            requests_per_minute=config["sentinelhub"]["requests_per_minute"],
            processing_units_per_minute=config["sentinelhub"][
                "processing_units_per_minute"
            ],
            max_wait_s=config["sentinelhub"]["max_wait_s"],
        script:
            "../../scripts/download_sentinelhub.py"
