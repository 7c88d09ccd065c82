"""RESULTS.md: the table, the bounded-memory runs, rule resources and the Slovenia projection."""

from __future__ import annotations

import datetime as dt
import math
import os

from inputs import country_margin_px, country_settings

from tools.country import country_tiles

# Slovenia 2017 at the eo-learn example's tiling, with config/slovenia.yaml's settings (over the schema's defaults).
COUNTRY = country_settings()
TILES = country_tiles()  # 260 of 10 km
TEST_FRACTION = COUNTRY["split"]["test_fraction"]
TRAIN_TILES = round(TILES * (1 - TEST_FRACTION))
EXAMPLE_SAMPLES = 40_000  # the eo-learn example's samples per tile (its 207 columns), for the like-for-like table
CONTEXT = bool(COUNTRY["features"]["context_sigmas"])
KEEP_INTERMEDIATES = COUNTRY["keep_intermediates"]
TEMPORARY = ("clouds", "features")  # the outputs the workflow marks temp() (workflow/rules/common.smk, intermediate)
FRAMES, PEER_FRAMES = 70, 60
TILE_PX, PEER_PX = 1000 * 1000, 500 * 500


# each tile's stack, clouds and features cover it and a margin of the spatial context's reach (landcover.grid): the
# bounded runs measure the grown tile, and the rules request memory for it
MARGIN_PX = country_margin_px()
GROWN_PX = (1000 + 2 * MARGIN_PX) ** 2
MANY_FRAMES = 140  # areas with about 140 acquisitions a year exist (overlapping orbits)
NODES = (1, 4, 16, 64)
RESOURCE_TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "workflow", "resources.yaml")
# per-tile rules of a country run (config/slovenia.yaml: one download per tile) and the once-per-run ones
PER_TILE_RULES = ("download_sentinelhub", "cloud_mask", "features", "reference", "sample", "predict")
ONCE_RULES = ("grid", "train", "compile_model", "report", "merge")  # compile_model: slovenia.yaml compiles


def max_samples() -> int:
    """config/slovenia.yaml's samples per tile as the workflow sets them: its max_samples lowered so that the
    training tiles' samples fit `sampling.train_memory_mb`, by the training's memory per value that
    workflow/resources.yaml holds (landcover.resources.samples_per_tile)."""
    from landcover.resources import load_table, samples_per_tile

    return samples_per_tile(COUNTRY, load_table(RESOURCE_TABLE)["train"], TRAIN_TILES, TILE_PX)


def _s(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x < 0.1:
        return f"{x * 1000:.2f} ms"
    if x < 100:
        return f"{x:.2f} s"
    if x < 3600:
        return f"{x / 60:.1f} min"
    return f"{x / 3600:.1f} h"


def _gb(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e9:,.1f} GB"


def _round_up(x: float, step: float) -> int:
    return int(math.ceil(x / step) * step)


def resources(table: dict, columns: int | None) -> list[tuple[str, int, str, int, int, int]]:
    """(rule, threads, basis, mem_mb, mem_mb at MANY_FRAMES, mem_mb on the 2nd attempt): the workflow's own formula
    (landcover.resources) on the table the rules read (workflow/resources.yaml, which bench.py has just written)."""
    from landcover import resources as res

    out = []
    for rule, job in table.get("tile_jobs", {}).items():
        mem = [
            res.memory_request(res.tile_peak_mb(job, GROWN_PX, f), 1000, a)
            for f, a in ((FRAMES, 1), (MANY_FRAMES, 1), (FRAMES, 2))
        ]
        out.append(
            (
                rule,
                job["threads"],
                f"peak {job['peak_mb']} MB ({job['base_mb']} MB libraries), measured {job['measured']}",
                *mem,
            )
        )
    train = table.get("train")
    if train and columns:
        n = TRAIN_TILES * max_samples()
        peak = res.train_peak_mb(train, n, columns)
        basis = (f"{n / 1e6:.2f} M samples x {columns:,}: {peak / 1024:.1f} GB by the formula ({train['bytes_per_value']} "
                 f"bytes a value and {train.get('binning_bytes', 8)} a value of the binning sample, fitted at "
                 f"{', '.join(f'{k:,}' for k in train['samples'])} samples, measured {train['measured']})")  # fmt: skip
        out.append(("train", 2, basis,
                    res.memory_request(peak, 2000), res.memory_request(peak, 2000), res.memory_request(peak, 2000, 2)))  # fmt: skip
    return out


def _scaled_mb(record: dict, scale: float) -> float:
    """A whole process's peak at `scale` x its data: its libraries (RSS before the case's data) plus the rest
    scaled; the same for both sides."""
    libraries = record["rss_after_inputs_mb"]
    return libraries + (record["peak_rss_mb"] - libraries) * scale


def projection(bounded: list[dict], facts: dict) -> tuple[str, dict]:
    by_job = {b["job"].split(" ")[0]: b for b in bounded if "error" not in b}
    need = ("cloud_mask", "features", "sample", "train", "predict")
    if not all(k in by_job for k in need):
        return "(not computed: a job of the bounded-memory runs is missing)\n", {}
    per_tile = {k: by_job[k]["wall_s"] for k in need if k != "train"}
    per_tile["reference"] = by_job.get("reference", {}).get("wall_s", 0.0)
    disk = {
        # as the real sources write them (run_ours.sources_stack), not the 13 bands at 10 m the jobs read
        "stacks": by_job["cloud_mask"]["bytes"].get("stack_sources.nc", by_job["cloud_mask"]["bytes"].get("stack.nc")),
        "clouds": by_job["cloud_mask"]["bytes"].get("clouds.nc"),
        "features": by_job["features"]["bytes"].get("features.nc"),
        "samples": by_job["sample"]["bytes"].get("samples.parquet"),
        "maps": sum(by_job["predict"]["bytes"].values()) if by_job["predict"]["bytes"] else None,
    }
    train = by_job["train"]
    samples_each = max_samples()
    n_train = TRAIN_TILES * samples_each
    n_test = (TILES - TRAIN_TILES) * samples_each
    t_train = train["wall_s"] * n_train / train["samples"]
    country = facts.get("country", {})
    t_merge = country.get("merge_s", float("nan"))
    t_report = (country["report_fit"][0] * n_test + country["report_fit"][1]) if country else float("nan")
    jobs = TILES * len(PER_TILE_RULES) + len(ONCE_RULES)
    t_jobs = jobs * country["job_s"] if country else float("nan")
    t_compile = by_job["predict"].get("compile_s") or 0.0  # the compile_model rule, once (0: predict.compile off)
    once = t_train + t_compile + t_merge + t_report

    # one 2-core machine: 2-thread rules one tile at a time; 1-thread rules (and the jobs' start-up) two at a time
    serial = {k: v * TILES for k, v in per_tile.items()}
    packed = {k: v * TILES / (1 if by_job.get(k, {}).get("threads", 1) == 2 else 2) for k, v in per_tile.items()}
    total_serial = sum(serial.values()) + once + t_jobs
    total_packed = sum(packed.values()) + once + t_jobs / 2

    lines = []
    report_sizes = ", ".join(f"{n:,}" for n in country.get("report_sizes", []))
    lines.append(
        f"Slovenia 2017 as config/slovenia.yaml runs it, with the workflow's default methods: {TILES} tiles of 10 x 10 "
        f"km (1000 x 1000 px at 10 m), {FRAMES} acquisitions, 13 bands; downloads excluded. Per-tile figures are the "
        f"bounded-memory runs above (one 10 km tile on this 2-core machine; each run's load average is in the log), "
        f"on the tile grown by its margin of {MARGIN_PX} px (the spatial context's reach rounded up to whole cloud "
        f"blocks, read from the source: {GROWN_PX / TILE_PX - 1:.1%} more pixels up to the features; the context "
        f"itself is computed in sample and predict, not stored). Training is on {TRAIN_TILES} training tiles "
        f"({1 - TEST_FRACTION:.0%} of {TILES}) x {samples_each:,} samples (`sampling.max_samples` lowered to fit "
        f"`sampling.train_memory_mb` {COUNTRY['sampling']['train_memory_mb']:,} MB) = "
        f"{n_train / 1e6:.2f} M samples of {train.get('columns') or 0:,} columns, **extrapolated** linearly in the "
        f"samples from the bounded run's training on one tile's {train['samples']:,}; the merge is measured on "
        f"{country.get('tiles', TILES)} random-class 1000 x 1000 tile maps (a single run); the report (scripts/report.py "
        f"on the test tiles' {n_test / 1e6:.2f} M samples) is **extrapolated** linearly from single runs on "
        f"{report_sizes} samples; each of the {jobs:,} Snakemake jobs ({TILES} tiles x {len(PER_TILE_RULES)} per-tile "
        f"rules + {len(ONCE_RULES)}) costs a fixed start-up measured below. Disk is the synthetic tile's compressed "
        f"size (real scenes compress differently, the stack most of all); the stack as the real sources write it: "
        f"the {len(COUNTRY['features']['bands'])} feature bands on the 10 m tile grid (those measured at 20 m as "
        f"2 x 2 blocks) and the 13 bands at 80 m for the cloud masks (`cloud_bands`, as Sentinel Hub delivers them); "
        f"the cloud masks and the features are temporary (`keep_intermediates` false: deleted once read) and left out "
        f"of the total kept; during the run every tile's features wait for the model, so the disk's peak holds them.\n"
    )
    lines.append(
        f"| stage | per tile | {TILES} tiles, 1 machine (serial) | 1 machine, 1-thread jobs 2 at a time | disk per tile | "
        f"disk, {TILES} tiles |"
    )
    lines.append("|---|---|---|---|---|---|")
    for label, key, dkey in (
        ("stack (input, synthetic here)", None, "stacks"),
        ("cloud_mask" + ("" if KEEP_INTERMEDIATES else " (temporary: deleted once read)"), "cloud_mask", "clouds"),
        ("features" + ("" if KEEP_INTERMEDIATES else " (temporary: deleted once read)"), "features", "features"),
        ("reference (erosion only)", "reference", None),
        ("sample", "sample", "samples"),
        ("predict", "predict", "maps"),
    ):
        d = disk.get(dkey) if dkey else None
        t = per_tile.get(key) if key else None
        lines.append(
            f"| {label} | {_s(t)} | {_s(serial.get(key)) if key else '-'} | {_s(packed.get(key)) if key else '-'} | "
            f"{_gb(d) if d else '-'} | {_gb(d * TILES) if d else '-'} |"
        )
    cog = sum(country.get("merge_bytes", {}).values()) or None
    lines.append(f"| train (once, extrapolated from one tile's samples) | - | {_s(t_train)} | {_s(t_train)} | - | - |")
    if t_compile:
        lines.append(f"| compile_model (once, measured: single run) | - | {_s(t_compile)} | {_s(t_compile)} | - | - |")
    lines.append(f"| merge (once, measured: single run) | - | {_s(t_merge)} | {_s(t_merge)} | - | {_gb(cog)} |")
    lines.append(f"| report (once, extrapolated) | - | {_s(t_report)} | {_s(t_report)} | - | - |")
    lines.append(f"| jobs' fixed cost ({jobs:,} jobs) | - | {_s(t_jobs)} | {_s(t_jobs / 2)} | - | - |")
    tile_disk = sum(v for k, v in disk.items() if v and (KEEP_INTERMEDIATES or k not in TEMPORARY))
    total_disk = tile_disk * TILES + (cog or 0)
    lines.append(
        f"| **total** | {_s(sum(per_tile.values()))} | **{_s(total_serial)}** | **{_s(total_packed)}** | "
        f"{_gb(tile_disk)} | {_gb(total_disk)} |"
    )
    lines.append("")
    if country:
        o = country["overhead_s"]
        lines.append(
            f"A job's fixed cost: Snakemake (local executor, 1 core) running {country['overhead_jobs'][1]} script jobs "
            f"that only import what the rules' scripts import and write an empty file took {_s(o[1])}, one such job "
            f"{_s(o[0])} (medians of {country['overhead_runs']}): {country['job_s']:.2f} s a job. On a cluster each job "
            f"also waits in the queue (not measured; the SLURM profile's job groups run a tile's chain as one job). "
            f"The merge peaked at {country['merge_mb']:,.0f} MB; the report at {country['report_mb'][-1]:,.0f} MB on "
            f"{country['report_sizes'][-1]:,} samples.\n"
        )
    target = (
        "met"
        if total_serial <= 24 * 3600
        else ("met only with 2 jobs at once" if total_packed <= 24 * 3600 else "**missed**")
    )
    lines.append(f"Target (whole country within 24 h on one 2-core machine, downloads excluded): {target} "
                 f"({_s(total_serial)} serial, {_s(total_packed)} with two 1-thread jobs at a time).\n")  # fmt: skip
    lines.append("On N cluster nodes of 2 cores (per-tile stages and their jobs' start-up spread over the nodes; "
                 "training, report and merge on one node):\n")  # fmt: skip
    lines.append("| nodes | per-tile stages | + training, report, merge | total |")
    lines.append("|---|---|---|---|")
    tile_jobs_s = t_jobs * TILES * len(PER_TILE_RULES) / jobs if country else 0.0
    for n in NODES:
        stages = math.ceil(TILES / n) * (sum(per_tile.values()) + tile_jobs_s / TILES)
        lines.append(f"| {n} | {_s(stages)} | {_s(once)} | {_s(stages + once)} |")
    lines.append("")
    after_stacks = total_disk - (disk["stacks"] or 0) * TILES
    peak_disk = after_stacks + (0 if KEEP_INTERMEDIATES else (disk["features"] or 0) * TILES)
    lines.append(f"Disk after the stacks: {_gb(after_stacks)} kept once the run is done, at most {_gb(peak_disk)} during "
                 f"it (every tile's features waiting for the model); the stacks as the sources write them: "
                 f"{_gb((disk['stacks'] or 0) * TILES)}.\n")  # fmt: skip
    summary = {
        "ours_serial_s": total_serial,
        "ours_packed_s": total_packed,
        "disk": total_disk,
        "disk_after_stacks": after_stacks,
        "disk_peak": peak_disk,
        "stacks": (disk["stacks"] or 0) * TILES,
    }

    # like for like: both sides from the same rows (2, 4, 5, 6), scaled from 500 x 500 x 60 to 1000 x 1000 x 70
    scale = TILE_PX * FRAMES / (PEER_PX * PEER_FRAMES)
    area = TILE_PX / PEER_PX
    pairs = []  # (stage, ours per tile, eo-learn per tile)
    for stage, key, factor in (
        ("stack -> clouds -> features (row 4)", "chain", scale),
        ("erosion (row 2a)", "erosion", area),
        ("sampling (row 2b)", "sampling", area),
        ("predict (row 5; peer: plain LightGBM)", "predict", 1.0),
    ):
        if f"{key}_peer" in facts and f"{key}_ours" in facts:
            pairs.append((stage, facts[f"{key}_ours"]["median_s"] * factor, facts[f"{key}_peer"]["median_s"] * factor))
    if pairs:
        # training as the eo-learn example samples (40 000 a tile) its 207 columns, both sides from row 6's fits
        n_example = TILES * (1 - TEST_FRACTION) * EXAMPLE_SAMPLES
        o_train, p_train = (
            facts[k]["fit"][0] * n_example + facts[k]["fit"][1] if k in facts else float("nan")
            for k in ("train", "train_peer")
        )
        ours_tile = sum(p[1] for p in pairs)
        peer_tile = sum(p[2] for p in pairs)
        lines.append(
            f"eo-learn's estimate beside ours, like for like: both from the same benchmark rows (each side's stack read, "
            f"cloud masks, features and interpolation of row 4, sampling and erosion of row 2, prediction of row 5, "
            f"training of row 6), scaled linearly from 500 x 500 x {PEER_FRAMES} to 1000 x 1000 x {FRAMES} (x{scale:.2f} "
            f"for the chain, x{area:.0f} for erosion and sampling), and both trained as the eo-learn example samples "
            f"({EXAMPLE_SAMPLES:,} a training tile, {n_example / 1e6:.1f} M samples of 207 columns: the plain method, "
            f"not the workflow's defaults projected above); writing the outputs, the merge, the report and the jobs' "
            f"start-up are left out on both sides:\n"
        )
        lines.append(f"| stage | ours per tile | eo-learn per tile | ours, {TILES} tiles | eo-learn, {TILES} tiles |")
        lines.append("|---|---|---|---|---|")
        for stage, o, p in pairs:
            lines.append(f"| {stage} | {_s(o)} | {_s(p)} | {_s(o * TILES)} | {_s(p * TILES)} |")
        lines.append(
            f"| train (once, extrapolated; peer: the example's LGBMClassifier) | - | - | {_s(o_train)} | {_s(p_train)} |"
        )
        lines.append(
            f"| **total, one 2-core machine** | {_s(ours_tile)} | {_s(peer_tile)} | **{_s(ours_tile * TILES + o_train)}** | "
            f"**{_s(peer_tile * TILES + p_train)}** |"
        )
        lines.append("")
        if "chain_peer" in facts and "chain_ours" in facts:
            peer_mem = _scaled_mb(facts["chain_peer"], scale)
            ours_mem = _scaled_mb(facts["chain_ours"], scale)
            lines.append(
                f"Memory, both sides alike: each chain's peak at 500 x 500 x 60 (row 4: ours "
                f"{facts['chain_ours']['peak_rss_mb']:.0f} MB, eo-learn {facts['chain_peer']['peak_rss_mb']:.0f} MB), its "
                f"libraries (RSS before the data: ours {facts['chain_ours']['rss_after_inputs_mb']:.0f} MB, eo-learn "
                f"{facts['chain_peer']['rss_after_inputs_mb']:.0f} MB) kept and the rest scaled x{scale:.2f} to a 10 km "
                f"tile: ours {ours_mem / 1024:.1f} GB, eo-learn {peer_mem / 1024:.1f} GB. Ours runs the chain as two jobs "
                f"that read the stack in row blocks and measured {by_job['cloud_mask']['peak_mb'] / 1024:.2f} and "
                f"{by_job['features']['peak_mb'] / 1024:.2f} GB on the 10 km tile (above); eo-learn holds the whole "
                f"EOPatch, so on a small machine it works on 5 km sub-tiles (the eo-learn example's EOPatch size).\n"
            )
        summary.update(ours_like_s=ours_tile * TILES + o_train, peer_like_s=peer_tile * TILES + p_train)
    return "\n".join(lines), summary


def _profile_text(profile: list[dict], top: int = 5) -> str:
    return "; ".join(f"`{p['function']}` {p['own_s']:.3g} s ({p['share']:.0%})" for p in profile[:top])


def _own(profile: list[dict], *needles: str) -> float:
    return sum(p["own_s"] for p in profile if any(n in p["function"] for n in needles))


def why(row, facts: dict) -> str:
    """What the profile of our side says about a missed target; shares are of the whole profiled run."""
    extra = row.extra or {}
    prof = extra.get("profile") or []
    total = extra.get("profile_total_s") or sum(p["own_s"] for p in prof) or 1.0
    text = f"top functions (share of the whole profiled run, {total:.3g} s): {_profile_text(prof)}." if prof else ""
    if row.row == "3" and prof and row.peer_s:
        lgb = _own(prof, "lightgbm/basic.py")
        over = row.ours_s - row.peer_s
        text += (f" s2cloudless's LightGBM is {lgb / total:.0%} of the profiled run; ours took {over:+.2f} s "
                 f"({over / row.peer_s:+.0%}) beside s2cloudless alone in separate processes; the 10 m -> 80 m block "
                 f"sums and the upsampling are ours only.")  # fmt: skip
    if row.row == "4" and prof and row.peer_s:
        lgb = _own(prof, "lightgbm/basic.py")
        h5 = _own(prof, "h5py/")
        text += (f" s2cloudless's LightGBM takes {lgb:.2f} s ({lgb / total:.0%}) and reading the stack "
                 f"(Blosc LZ4, read twice: by cloud_masks and by tile_features, as the workflow's two jobs do) {h5:.2f} s "
                 f"({h5 / total:.0%}). eo-learn runs the same s2cloudless model on the same 80 m pixels, so even with "
                 f"everything else free the speed-up could not exceed {row.peer_s / max(lgb, 1e-9):.1f}x: the 5x target "
                 f"is out of reach while s2cloudless's model dominates both chains (Amdahl).")  # fmt: skip
    if row.row == "2b" and prof and row.peer_s:
        take = _own(prof, "'take' of 'numpy.ndarray'")
        text += (
            f" Ours gathers each date's values of the chosen pixels once (`np.take` into the table's columns, no "
            f"further copy): {take * 1000:.1f} ms ({take / total:.0%}) of the profiled run, against a 5x budget of "
            f"{row.peer_s / 5 * 1000:.1f} ms for the whole case; a 20 % sample of a 500 x 500 tile touches most cache "
            f"lines of the 207 MB feature cube, so the gather is bound by memory bandwidth."
        )
    return text


def write_results(
    path, rows, bounded, facts, commands, log, machine, total_s, load_start, load_end, table_md, bounded_md
) -> str:
    m = machine
    projected, summary = projection(bounded, facts) if bounded else ("", {})
    out = ["# Benchmarks against eo-learn 1.5.7", ""]
    how = "Assembled by `bench.py --reuse`" if m.get("reused") else "Written by `make bench`"
    out.append(
        f"{how} on {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} in {total_s / 60:.1f} min. "
        f"Machine: {m.get('cpu', '?')}, {m.get('cores')} cores, {m.get('memory_gb', 0):.0f} GB RAM, Python {m['python']}, "
        f"{m['platform']}. Load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end"
        + (
            ": the machine was shared with other jobs, so absolute times are inflated and noisy; each row's two sides "
            "ran minutes apart in the same run, so the ratios compare like with like (each measurement's load is in "
            "the log)."
            if load_start[0] > 0.5 * (m.get("cores") or 1)  # before the benchmark's own processes
            else "."
        )
    )
    if m.get("note"):
        out.append("")
        out.append(m["note"])
    if m.get("missing"):
        out.append("")
        out.append(
            "**Not measured in this file** (neither run nor reused; `make bench` runs them): "
            + "; ".join(m["missing"])
            + "."
        )
    if m.get("reused"):
        out.append("")
        out.append("Rows taken from an earlier run (`--reuse`, work/bench_state.json): " + "; ".join(m["reused"]) + ".")
    out.append("")
    out.append(
        f"OMP_WAIT_POLICY={m.get('omp_wait_policy') or '(default)'} for every measured process, both sides: with OpenMP's "
        "default spinning, LightGBM (in ours, in s2cloudless and in the peers) runs several times slower whenever the "
        "cores are shared (`BENCH_OMP_WAIT_POLICY= make bench` measures that default)."
    )
    out.append("")
    out.append("Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".")
    out.append("")
    out.append(
        "Method: each side of each row runs in its own process under `/usr/bin/time -v` (peak RSS = that process: inputs, "
        "warm-up and timed runs); both build the same seeded inputs (`inputs.py`, checksums compared). Time = median of "
        "the timed runs after a warm-up run (for eo-learn the warm-up holds numba's compilation); the runs column says "
        'how many timed runs each side\'s figure is the median of, and "single run" where there was one. `ours/peer` is '
        "the ratio of median times (0.1 = ten times faster)."
    )
    out.append("")
    out.append("## Results")
    out.append("")
    out.append(table_md)
    out.append("")
    out.append("## A country on a laptop: the goals of issue 19")
    out.append("")
    out.extend(goals(rows, bounded, summary))
    out.append("")
    out.append("Notes per row:")
    out.append("")
    for r in rows:
        if r.note:
            out.append(f"- **{r.row}**: {r.note}")
    out.append("")
    whys = [(r, why(r, facts)) for r in rows if r.met is False]
    whys = [(r, w) for r, w in whys if w]
    if whys:
        out.append("### Why the misses")
        out.append("")
        out.append("Each of our cases ran once more under cProfile after its timed runs; the functions with the most own "
                   "time, and what that implies:")  # fmt: skip
        out.append("")
        for r, w in whys:
            out.append(f"- **{r.row}** {w}")
        out.append("")
    if bounded:
        out.append("## Bounded memory: per-tile jobs on a 10 km tile")
        out.append("")
        out.append(
            "The package functions each script calls (read inputs, compute, write outputs), on a 1000 x 1000 tile with 70 "
            "frames and 13 bands made by `landcover.synthetic.synthesize_tile` on a 1000 x 1000 `TileGrid` (10 km, 10 m) "
            "and written with `landcover.stack.write`; prediction uses row 5's model. One process per job under "
            "`/usr/bin/time -v`; target: peak RSS under 2 GiB."
        )
        out.append("")
        out.append(bounded_md)
        out.append("")
        from landcover.resources import load_table, train_columns

        res = resources(load_table(RESOURCE_TABLE), train_columns(COUNTRY))
        if res:
            out.append("### Rule memory requests (10 km tiles)")
            out.append("")
            out.append(
                "The workflow's own formula (`landcover/resources.py`, used by `workflow/rules/common.smk`) on the table "
                "the rules read, `workflow/resources.yaml`, which bench.py writes from the peaks above and the training "
                "runs (a part this run did not measure, or training fitted below LightGBM's 200 000-row binning sample, "
                "keeps its earlier measurement, dated in the basis column): mem_mb = (1.3 x peak + "
                f"200 MB, in 250 MB steps) x attempt, a job killed for memory retrying with more (the profiles set "
                f"`retries`); the peak's data part (above the libraries) scales with the tile's pixels and, for the jobs "
                f"that hold every frame (cloud_mask, features), with its frames beyond the {FRAMES} measured, read from "
                f"the tile's stack before the job starts; training by samples x columns."
            )
            out.append("")
            out.append(f"| rule | threads | basis | mem_mb | mem_mb, {MANY_FRAMES} frames | mem_mb, 2nd attempt |")
            out.append("|---|---|---|---|---|---|")
            for rule, threads, basis, mem, many, second in res:
                out.append(f"| {rule} | {threads} | {basis} | {mem} | {many} | {second} |")
            out.append("")
        out.append("## Country projection: Slovenia 2017")
        out.append("")
        out.append(projected)
    out.append("## Commands")
    out.append("")
    out.append("`make bench` (= `make -C benchmarks`) builds `benchmarks/.venv` and runs `python bench.py`, which ran:")
    out.append("")
    out.append("```")
    out.extend(commands)
    out.append("```")
    out.append("")
    out.append("## Log")
    out.append("")
    out.extend(f"- {line}" for line in log)
    out.append("")
    text = "\n".join(out)
    with open(path, "w") as f:
        f.write(text)
    if os.path.abspath(path) == os.path.abspath(RESULTS):  # a copy elsewhere (--out) leaves the README alone
        from tools.readme import write_blocks

        write_blocks(README, readme_blocks(rows, facts, summary, goals(rows, bounded, summary)))
    return text


README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def readme_blocks(rows, facts: dict, summary: dict, goal_lines: list[str]) -> dict[str, str]:
    """The README's figures from this run: the demo's time (row D) and the benchmark's headline table."""
    today = dt.date.today().isoformat()
    blocks = {}
    demo = facts.get("demo")
    if demo:
        blocks["demo"] = (
            f"On a 2-core machine the workflow ({demo['jobs']} jobs) and its report took "
            f"{demo['wall_s'] / 60:.1f} min once installed (`make bench`, row D, {today}).\n"
        )
    intro = (f"Measured by `make bench` on {today} ([`benchmarks/RESULTS.md`](benchmarks/RESULTS.md) has every "
             "figure, its method and log):")  # fmt: skip
    lines = [intro, "", "| row | what | ours | peer | ours/peer | target met |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.3f}"
        met = "-" if r.met is None else r.met if isinstance(r.met, str) else ("yes" if r.met else "**no**")
        lines.append(f"| {r.row} | {r.what} | {_s(r.ours_s)} | {_s(r.peer_s)} | {ratio} | {met} |")
    if summary:
        lines.append("")
        lines.append(
            f"Slovenia 2017 as `config/slovenia.yaml` runs it (default methods, downloads excluded), projected from "
            f"one 10 km tile's jobs: {_s(summary['ours_serial_s'])} on one 2-core machine one job at a time, "
            f"{_s(summary['ours_packed_s'])} with two 1-thread jobs at a time, {_gb(summary['disk'])} on disk."
            + (
                f" Like for like with eo-learn (the plain method on both sides, the same benchmark rows): ours "
                f"{_s(summary['ours_like_s'])}, eo-learn {_s(summary['peer_like_s'])}."
                if "ours_like_s" in summary
                else ""
            )
        )
    lines += ["", *goal_lines]
    blocks["bench"] = "\n".join(lines) + "\n"
    return blocks


# Issue 19's "today" column: benchmarks/RESULTS.md of 2026-11-30, before tiles stood alone (its own figures).
BEFORE = {
    "country": "14.3 h",
    "disk": "728 GB",
    "stacks": "337 GB (13 bands at 10 m)",
    "job_peak": "context 3.4 GB",
    "train": "28.5 GB",
    "predict": "1.08x slower",
    "clouds": "1.1x",
    "chain": "2.2x",
    "demo": "3-5.5 min",
}


def _speed(row) -> str:
    return "-" if row is None or not row.ratio else f"{1 / row.ratio:.2f}x faster"


def goals(rows, bounded, summary: dict) -> list[str]:
    """Issue 19's table: each goal beside the figure the issue started from and this run's, measured here."""
    from landcover.resources import load_table, train_columns

    by_row = {r.row: r for r in rows}
    peaks = {b["job"].split(" ")[0]: b["peak_mb"] for b in bounded or () if "error" not in b and "peak_mb" in b}
    peaks.pop("train", None)
    worst = max(peaks.items(), key=lambda item: item[1]) if peaks else None
    train = {rule: mem for rule, _, _, mem, _, _ in resources(load_table(RESOURCE_TABLE), train_columns(COUNTRY))}
    demo = by_row.get("D")

    def met(ok) -> str:
        return "not measured" if ok is None else ok if isinstance(ok, str) else "yes" if ok else "**no**"

    def faster(row, goal: float):
        return None if row is None or not row.ratio else 1 / row.ratio >= goal

    serial = summary.get("ours_serial_s")
    items = [
        ("Slovenia 2017, default methods, downloads excluded, margins included (one 2-core machine, serial)",
         "country", _s(serial) if serial else "-", "<= 3 h", None if serial is None else serial <= 3 * 3600),
        ("disk of everything after the stacks: kept / at most during the run", "disk",
         f"{_gb(summary.get('disk_after_stacks'))} / {_gb(summary.get('disk_peak'))}" if summary else "-", "<= 100 GB",
         None if not summary
         else f"kept {met(summary['disk_after_stacks'] <= 100e9)}, peak {met(summary['disk_peak'] <= 100e9)}"),
        ("stacks as the sources write them", "stacks", _gb(summary.get("stacks")) if summary else "-",
         "measured and shown", None if not summary else True),
        ("per-tile job peak (10 km tile)", "job_peak", f"{worst[0]} {worst[1] / 1024:.2f} GB" if worst else "-",
         "every job <= 2 GiB", None if worst is None else worst[1] <= 2048),
        ("training request for Slovenia (rule train's mem_mb)", "train",
         f"{train['train'] / 1000:.1f} GB" if "train" in train else "-", "<= 12 GB",
         None if "train" not in train else train["train"] <= 12000),
        ("predict against plain LightGBM on the same model, compile counted once per country (row 5b)", "predict",
         _speed(by_row.get("5b")), ">= 3x faster", faster(by_row.get("5b"), 3)),
        ("cloud masks against s2cloudless alone (row 3)", "clouds", _speed(by_row.get("3")), ">= 3x faster",
         faster(by_row.get("3"), 3)),
        ("per-tile chain against eo-learn (row 4)", "chain", _speed(by_row.get("4")), ">= 5x faster",
         faster(by_row.get("4"), 5)),
        ("`make demo` after install, 2 cores (row D)", "demo", _s(demo.ours_s) if demo else "-", "<= 3 min",
         None if demo is None or demo.ours_s is None else demo.ours_s <= 180),
    ]  # fmt: skip
    row5 = by_row.get("5")
    why = {
        "disk": "every tile's features (temporary) wait for the model, so the peak holds them all; compact storage is "
        "not adopted (landcover/stack.py says why)",
        "predict": "the rest is predict_tile's own reading and table building: with LightGBM it runs at "
        + (f"{1 / row5.ratio:.2f}x" if row5 and row5.ratio else "?")
        + " LightGBM's speed on the whole table (row 5)",
        "clouds": "s2cloudless's own LightGBM is most of both sides; compiling it through s2cloudless's API is "
        "measured by hand only (benchmarks/README.md), not built",
        "chain": "the same s2cloudless model dominates both chains: the bound under Why the misses, row 4",
    }
    lines = ["| figure | issue 19's starting figure | this run | goal | met | why not |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {what} | {BEFORE[key]} | {now} | {goal} | {met(ok)} | {why.get(key, '') if '**no**' in met(ok) else ''} |"
        for what, key, now, goal, ok in items
    ]
    return lines
