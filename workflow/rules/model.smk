rule train:
    input:
        samples=samples_of(TRAIN_TILES),
    output:
        model=result("model/model.txt"),
        metadata=result("model/model.json"),
    log:
        "logs/train/train.log",
    benchmark:
        result("benchmarks/train/train.tsv")
    conda:
        ENV
    threads: config["threads"]["train"]
    resources:
        mem_mb=train_mem_mb,
        runtime=120,
    params:
        classes=CLASSES,
        seed=config["model"]["seed"],
        params=config["model"]["params"],
        temporal_stats=config["features"]["temporal_stats"],
        class_weight=config["model"]["class_weight"],
        tuning=config["model"]["tuning"],
        rounds=config["model"]["rounds"],
        training_tiles=TRAIN_TILES,
    script:
        "../../scripts/train.py"
