"""RESULTS.md: the table, the bounded-memory runs, rule resources and the Slovenia projection."""

from __future__ import annotations

import datetime as dt
import math

# Slovenia 2017 with the eo-learn example's setup.
TILES = 262
TEST_FRACTION = 0.3
MAX_SAMPLES = 40_000
FRAMES, PEER_FRAMES = 70, 60
TILE_PX, PEER_PX = 1000 * 1000, 500 * 500
NODES = (1, 4, 16, 64)


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


def resources(bounded: list[dict], facts: dict) -> list[tuple[str, int, int, int, str]]:
    """(rule, threads, mem_mb, runtime_min, basis) from the measured 10 km jobs: mem 1.3 x peak + 200 MB rounded up
    to 250 MB; runtime 4 x the measured wall (a shared or slower node, retries) rounded up to 5 min, at least 10."""
    out = []
    by_job = {b["job"].split(" ")[0]: b for b in bounded if "error" not in b}
    for rule, job in (
        ("cloud_mask", "cloud_mask"),
        ("features", "features"),
        ("sample", "sample"),
        ("predict", "predict"),
    ):
        b = by_job.get(job)
        if b is None:
            continue
        mem = _round_up(1.3 * b["peak_mb"] + 200, 250)
        runtime = max(10, _round_up(4 * b["wall_s"] / 60, 5))
        out.append((rule, b["threads"], mem, runtime, f"measured {b['peak_mb']:.0f} MB, {b['wall_s']:.0f} s"))
    train = facts.get("train")
    if train:
        n = TILES * (1 - TEST_FRACTION) * MAX_SAMPLES
        slope, icpt = train["fit"]
        mslope, micpt = train["mfit"]
        t = slope * n + icpt
        m = mslope * n + micpt
        out.append(
            ("train", 2, _round_up(1.3 * m + 500, 1000), max(30, _round_up(2 * t / 60, 30)),
             f"extrapolated to {n / 1e6:.1f} M samples: {m / 1024:.1f} GB, {t / 60:.0f} min")
        )  # fmt: skip
    return out


def projection(bounded: list[dict], facts: dict) -> tuple[str, dict]:
    by_job = {b["job"].split(" ")[0]: b for b in bounded if "error" not in b}
    need = ("cloud_mask", "features", "sample", "predict")
    if not all(k in by_job for k in need):
        return "(not computed: a per-tile job of the bounded-memory runs is missing)\n", {}
    prep = facts.get("prepare_bounded", {})
    stack_bytes = by_job["cloud_mask"]["bytes"].get("stack.nc")
    per_tile = {k: by_job[k]["wall_s"] for k in need}
    per_tile["reference"] = by_job.get("reference", {}).get("wall_s", 0.0)
    disk = {
        "stacks": stack_bytes,
        "clouds": by_job["cloud_mask"]["bytes"].get("clouds.nc"),
        "features": by_job["features"]["bytes"].get("features.nc"),
        "samples": by_job["sample"]["bytes"].get("samples.parquet"),
        "maps": sum(by_job["predict"]["bytes"].values()) if by_job["predict"]["bytes"] else None,
    }
    train = facts.get("train")
    n_train = TILES * (1 - TEST_FRACTION) * MAX_SAMPLES
    t_train = train["fit"][0] * n_train + train["fit"][1] if train else float("nan")

    # one 2-core machine: 2-thread rules one tile at a time; 1-thread rules two tiles at a time
    serial = {k: v * TILES for k, v in per_tile.items()}
    packed = {k: v * TILES / (1 if by_job.get(k, {}).get("threads", 1) == 2 else 2) for k, v in per_tile.items()}
    tile_total_serial = sum(serial.values())
    tile_total_packed = sum(packed.values())

    # like for like: both sides from the same rows (2b, 4, 5), scaled from 500 x 500 x 60 to 1000 x 1000 x 70
    scale = TILE_PX * FRAMES / (PEER_PX * PEER_FRAMES)
    area = TILE_PX / PEER_PX
    pairs = []  # (stage, ours per tile, eo-learn per tile)
    if "chain_peer" in facts and "chain_ours" in facts:
        pairs.append(("stack -> clouds -> features (row 4)", facts["chain_ours"]["median_s"] * scale,
                      facts["chain_peer"]["median_s"] * scale))  # fmt: skip
    if "erosion_peer" in facts and "erosion_ours" in facts:
        pairs.append(
            ("erosion (row 2a)", facts["erosion_ours"]["median_s"] * area, facts["erosion_peer"]["median_s"] * area)
        )
    if "sampling_peer" in facts and "sampling_ours" in facts:
        pairs.append(
            ("sampling (row 2b)", facts["sampling_ours"]["median_s"] * area, facts["sampling_peer"]["median_s"] * area)
        )
    if "predict_peer" in facts and "predict_ours" in facts:
        pairs.append(("predict (row 5)", facts["predict_ours"]["median_s"], facts["predict_peer"]["median_s"]))
    peer_mem = facts["chain_peer"]["peak_rss_mb"] * scale if "chain_peer" in facts else None

    lines = []
    lines.append(
        f"Slovenia 2017 as in the eo-learn example: {TILES} tiles of 10 x 10 km (1000 x 1000 px at 10 m), {FRAMES} "
        f"acquisitions, 13 bands; downloads excluded. Per-tile figures are the bounded-memory runs above (one 10 km "
        f"tile, measured on this shared 2-core machine, so pessimistic); training is on {TILES} x "
        f"{1 - TEST_FRACTION:.0%} training tiles x {MAX_SAMPLES:,} samples = {n_train / 1e6:.1f} M samples, "
        f"**extrapolated** from the row-6 fit (measured at <= {max(train['sizes']) if train else 0:,} samples). "
        f"Disk is the synthetic tile's compressed size (real scenes compress differently, the stack most of all).\n"
    )
    lines.append(
        "| stage | per tile | 262 tiles, 1 machine (serial) | 1 machine, 1-thread rules 2 at a time | disk per tile | disk, 262 tiles |"
    )
    lines.append("|---|---|---|---|---|---|")
    rows = [
        ("stack (input, synthetic here)", None, "stacks"),
        ("cloud_mask", "cloud_mask", "clouds"),
        ("features", "features", "features"),
        ("reference (erosion only)", "reference", None),
        ("sample", "sample", "samples"),
        ("predict", "predict", "maps"),
    ]
    for label, key, dkey in rows:
        d = disk.get(dkey) if dkey else None
        t = per_tile.get(key) if key else None
        lines.append(
            f"| {label} | {_s(t)} | {_s(serial.get(key)) if key else '-'} | {_s(packed.get(key)) if key else '-'} | "
            f"{_gb(d) if d else '-'} | {_gb(d * TILES) if d else '-'} |"
        )
    lines.append(f"| train (once, extrapolated) | - | {_s(t_train)} | {_s(t_train)} | - | - |")
    lines.append("| merge (once) | - | not measured | not measured | - | ~0.5 GB (uint8 COG) |")
    total_serial = tile_total_serial + t_train
    total_packed = tile_total_packed + t_train
    total_disk = sum(v for v in disk.values() if v) * TILES
    lines.append(
        f"| **total** | {_s(sum(per_tile.values()))} | **{_s(total_serial)}** | **{_s(total_packed)}** | "
        f"{_gb(sum(v for v in disk.values() if v))} | {_gb(total_disk)} |"
    )
    lines.append("")
    target = (
        "met"
        if total_serial <= 24 * 3600
        else ("met only with 2 jobs at once" if total_packed <= 24 * 3600 else "**missed**")
    )
    lines.append(f"Target (whole country within 24 h on one 2-core machine, downloads excluded): {target} "
                 f"({_s(total_serial)} serial, {_s(total_packed)} with two 1-thread jobs at a time).\n")  # fmt: skip
    lines.append("On N cluster nodes of 2 cores (per-tile stages spread over the nodes, training on one node):\n")
    lines.append("| nodes | per-tile stages | + training | total |")
    lines.append("|---|---|---|---|")
    for n in NODES:
        stages = math.ceil(TILES / n) * sum(per_tile.values())
        lines.append(f"| {n} | {_s(stages)} | {_s(t_train)} | {_s(stages + t_train)} |")
    lines.append("")
    summary = {"ours_serial_s": total_serial, "ours_packed_s": total_packed, "disk": total_disk}
    if pairs:
        ours_tile = sum(p[1] for p in pairs)
        peer_tile = sum(p[2] for p in pairs)
        lines.append(
            f"eo-learn's estimate beside ours, like for like: both from the same benchmark rows (each side's stack read, "
            f"cloud masks, features and interpolation of row 4, sampling and erosion of row 2, prediction of row 5), "
            f"scaled linearly from 500 x 500 x {PEER_FRAMES} to 1000 x 1000 x {FRAMES} (x{scale:.2f} for the chain, x{area:.0f} "
            f"for erosion and sampling); writing the outputs is left out on both sides, and training is the same LightGBM "
            f"on both, so the same figure:\n"
        )
        lines.append("| stage | ours per tile | eo-learn per tile | ours, 262 tiles | eo-learn, 262 tiles |")
        lines.append("|---|---|---|---|---|")
        for stage, o, p in pairs:
            lines.append(f"| {stage} | {_s(o)} | {_s(p)} | {_s(o * TILES)} | {_s(p * TILES)} |")
        lines.append(f"| train (once, extrapolated) | - | - | {_s(t_train)} | {_s(t_train)} |")
        lines.append(
            f"| **total, one 2-core machine** | {_s(ours_tile)} | {_s(peer_tile)} | **{_s(ours_tile * TILES + t_train)}** | "
            f"**{_s(peer_tile * TILES + t_train)}** |"
        )
        lines.append("")
        if peer_mem:
            lines.append(
                f"eo-learn's chain would need about {peer_mem / 1024:.1f} GB per 10 km tile (its "
                f"{facts['chain_peer']['peak_rss_mb']:.0f} MB peak at 500 x 500 x 60, scaled), so on a small machine it has "
                f"to work on 5 km sub-tiles (the eo-learn example's EOPatch size); ours peaks at "
                f"{max(b['peak_mb'] for b in by_job.values()) / 1024:.2f} GB in its heaviest 10 km job (above).\n"
            )
        summary.update(ours_like_s=ours_tile * TILES + t_train, peer_like_s=peer_tile * TILES + t_train)
    del prep
    return "\n".join(lines), summary


def _profile_text(profile: list[dict], top: int = 5) -> str:
    return "; ".join(f"`{p['function']}` {p['own_s']:.3g} s ({p['share']:.0%})" for p in profile[:top])


def _own(profile: list[dict], *needles: str) -> float:
    return sum(p["own_s"] for p in profile if any(n in p["function"] for n in needles))


def why(row, facts: dict) -> str:
    """What the profile of our side says about a missed target."""
    prof = (row.extra or {}).get("profile") or []
    text = f"top functions: {_profile_text(prof)}." if prof else ""
    if row.row == "3" and "clouds_s2c" in facts and prof:
        lgb = _own(prof, "lightgbm/basic.py")
        total = sum(p["own_s"] for p in prof) or 1
        over = row.ours_s - row.peer_s
        text += (f" s2cloudless's LightGBM is {lgb / total:.0%} of the profiled run; ours took {over:+.2f} s "
                 f"({over / row.peer_s:+.0%}) beside s2cloudless alone, although ours gives the same model the same "
                 f"pixels in a similar-spectra-first order (same values, ~15 % less LightGBM CPU): the 10 m -> 80 m block "
                 f"sums and the upsampling are what remains of the overhead, plus run-to-run noise of the shared "
                 f"machine.")  # fmt: skip
    if row.row == "4" and prof and row.peer_s:
        lgb = _own(prof, "lightgbm/basic.py")
        h5 = _own(prof, "h5py/")
        total = sum(p["own_s"] for p in prof) or 1
        text += (f" s2cloudless's LightGBM takes {lgb:.2f} s ({lgb / total:.0%}) and reading the stack "
                 f"(Blosc LZ4, read twice: by cloud_masks and by tile_features, as the workflow's two jobs do) {h5:.2f} s "
                 f"({h5 / total:.0%}). eo-learn runs the same s2cloudless model on the same 80 m pixels, so even with "
                 f"everything else free the speed-up could not exceed {row.peer_s / max(lgb, 1e-9):.1f}x: the 5x target "
                 f"is out of reach while s2cloudless's model dominates both chains (Amdahl).")  # fmt: skip
    if row.row == "2b" and prof:
        text += (
            " Ours gathers each date's values of the chosen pixels once (`np.take` into the table's columns, no "
            "further copy). A 20 % sample of a 500 x 500 tile touches most cache lines of the 207 MB feature cube, "
            "and one pass over it takes 11.5-13.5 ms on these 2 cores (also with 2 threads: memory bound), which is "
            "the whole 5x budget (~13 ms); eo-learn's own gather of the same values takes ~42 ms of its time."
        )
    if row.row == "2a" and prof:
        text += (
            " at well under a millisecond, per-call allocation and two filter passes (cv2 erode and dilate) dominate."
        )
    return text


def write_results(
    path, rows, bounded, facts, commands, log, machine, total_s, load_start, load_end, table_md, bounded_md
) -> str:
    m = machine
    out = ["# Benchmarks against eo-learn 1.5.7", ""]
    how = "Assembled by `bench.py --reuse`" if m.get("reused") else "Written by `make bench`"
    out.append(
        f"{how} on {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} in {total_s / 60:.1f} min. "
        f"Machine: {m.get('cpu', '?')}, {m.get('cores')} cores, {m.get('memory_gb', 0):.0f} GB RAM, Python {m['python']}, "
        f"{m['platform']}. Load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end: the machine was "
        f"shared with other jobs, so times are noisy (medians below; each measurement's load is in the log)."
    )
    if m.get("reused"):
        out.append("")
        out.append("Rows taken from an earlier run (`--reuse`, work/bench_state.json): " + "; ".join(m["reused"]) + ".")
    out.append("")
    out.append(
        f"OMP_WAIT_POLICY={m.get('omp_wait_policy') or '(default)'} for every measured process, both sides: with OpenMP's "
        "default spinning, LightGBM (in ours, in s2cloudless and in the peers) ran up to 7x slower whenever the two cores "
        "were shared (a 10 000-sample training took 370 s instead of 50-59 s here)."
    )
    out.append("")
    out.append("Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".")
    out.append("")
    out.append(
        "Method: each side of each row runs in its own process under `/usr/bin/time -v` (peak RSS = that process: inputs, "
        "warm-up and timed runs); both build the same seeded inputs (`inputs.py`, checksums compared). Time = median of "
        "the timed runs after a warm-up run (for eo-learn the warm-up holds numba's compilation). `ours/peer` is the "
        "ratio of median times (0.1 = ten times faster)."
    )
    out.append("")
    out.append("## Results")
    out.append("")
    out.append(table_md)
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
        res = resources(bounded, facts)
        if res:
            out.append("### Recommended rule resources (10 km tiles)")
            out.append("")
            out.append("mem_mb = 1.3 x measured peak + 200 MB (rounded up to 250 MB); runtime (min) = 4 x measured wall, at "
                       "least 10 (cluster nodes are shared or slower); threads = what the job can use.")  # fmt: skip
            out.append("")
            out.append("| rule | threads | mem_mb | runtime | basis |")
            out.append("|---|---|---|---|---|")
            for rule, threads, mem, runtime, basis in res:
                out.append(f"| {rule} | {threads} | {mem} | {runtime} | {basis} |")
            out.append("")
        out.append("## Country projection: Slovenia 2017")
        out.append("")
        text, _ = projection(bounded, facts)
        out.append(text)
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
    return text
