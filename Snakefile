# landcover: a year of Sentinel-2 L1C over an area of interest -> a land-cover map.
# Stages live in workflow/rules/, the science in the landcover package, one thin script per rule.

from snakemake.utils import min_version, validate

min_version("9.0")


# The demo area, only when no --configfile names another: a config of one's own then stands
# alone over the schema's defaults instead of inheriting the demo's tiles (config/README.md).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/grid.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/clouds.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/sampling.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/maps.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/viewer.smk"


# Snakemake's own lock is never touched here: this marks a run that executes jobs as alive, so that
# `landcover unlock` can tell a killed run's stale lock from a live one (landcover/runlock.py). Snakemake
# calls onstart only in the main process of a real run: not for -n, --lint or the jobs it spawns.
onstart:
    from landcover import runlock

    runlock.hold(".snakemake")


rule all:
    default_target: True
    input:
        final_outputs(),
