rule report:
    input:
        model=result("model/model.txt"),
        metadata=result("model/model.json"),
        test_samples=samples_of(TEST_TILES),
        train_samples=samples_of(TRAIN_TILES),
    output:
        **{
            name: report(result(f"report/{name}.png"), category="Validation")
            for name in REPORT_FIGURES
        },
        metrics=report(result("report/metrics.json"), category="Validation"),
    log:
        "logs/report/report.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        classes=CLASSES,
        dpi=config["report"]["dpi"],
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
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        erosion_radius=config["reference"]["erosion_radius"],
    script:
        "../../scripts/score_truth.py"
