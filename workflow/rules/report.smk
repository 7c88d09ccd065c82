rule report:
    input:
        model=result("model/model.txt"),
        metadata=result("model/model.json"),
        test_samples=samples_of(TEST_TILES),
        train_samples=samples_of(TRAIN_TILES),
    output:
        metrics=report(result("report/metrics.json"), category="Validation"),
        **{
            name: report(result(f"report/{name}.png"), category="Validation")
            for name in REPORT_FIGURES
        },
    params:
        classes=CLASSES,
        dpi=config["report"]["dpi"],
    log:
        "logs/report/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        ENV
    script:
        "../../scripts/report.py"


rule score_truth:
    input:
        maps=maps_of(TEST_TILES),
        truth=[result(f"truth/{tile}.nc") for tile in TEST_TILES],
    output:
        scores=report(result("report/truth_scores.json"), category="Validation"),
    log:
        "logs/score_truth/score_truth.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    script:
        "../../scripts/score_truth.py"
