rule report:
    input:
        model=result("model/model.txt"),
        metadata=result("model/model.json"),
        test_samples=samples_of(TEST_TILES),
        train_samples=samples_of(TRAIN_TILES),
        test_maps=maps_of(TEST_TILES),
        test_references=[result(f"reference/{tile}.tif") for tile in TEST_TILES],
        map=result("landcover.tif"),
        frames=frame_records(),
        reference_check=result("report/reference_check.gpkg"),
        truth=[result("report/truth_scores.json")] if SOURCE == "synthetic" else [],
    output:
        **{
            name: report(
                result(f"report/{name}.png"),
                caption=f"../report/{name}.rst",
                category="Validation",
                subcategory=subcategory,
            )
            for name, subcategory in REPORT_FIGURES.items()
        },
        summary=report(
            result("report/summary.html"),
            caption="../report/summary.rst",
            category="Validation",
            subcategory="Summary",
        ),
        metrics=report(
            result("report/metrics.json"),
            caption="../report/metrics.rst",
            category="Validation",
            subcategory="Summary",
        ),
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
        reference_check=reference_check_settings(),
        lock_file=os.path.join(workflow.basedir, "requirements.lock.txt"),
    script:
        "../../scripts/report.py"


rule score_truth:
    input:
        maps=maps_of(TEST_TILES),
        truth=[result(f"truth/{tile}.nc") for tile in TEST_TILES],
    output:
        scores=report(
            result("report/truth_scores.json"),
            caption="../report/truth_scores.rst",
            category="Validation",
            subcategory="Synthetic truth",
        ),
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


rule reference_check:
    input:
        maps=maps_of(TILES),
        confidence=[result(f"maps/{tile}_confidence.tif") for tile in TILES],
        reference=[result(f"reference/{tile}.tif") for tile in TILES],
        polygons=reference_polygon_files(),
    output:
        gpkg=report(
            result("report/reference_check.gpkg"),
            caption="../report/reference_check.rst",
            category="Validation",
            subcategory="Reference check",
        ),
        style=report(
            result("report/reference_check.qml"),
            caption="../report/reference_check.rst",
            category="Validation",
            subcategory="Reference check",
        ),
    log:
        "logs/reference_check/reference_check.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        **reference_check_settings(),
        classes=CLASSES,
        tiles=TILES,
        class_attribute=config["reference"]["class_attribute"],
    script:
        "../../scripts/reference_check.py"
