"""Run one benchmark case in this process and print its measurements as one JSON line.

    python run_ours.py CASE [--repeats N] [--warmup W] [--out DIR]
    python run_peer.py CASE ...

`bench.py` starts every case in its own subprocess under `/usr/bin/time -v`, so the peak RSS it
reads belongs to that case alone (inputs, warm-up and timed runs included). A case is a function
returning `Case(run, save)`: building the inputs happens before timing; `run()` is the timed
call; `save(result, out_dir)` writes what `bench.py` compares (outside the timing).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inputs import WORK


@dataclass
class Case:
    run: Callable[[], Any]
    save: Callable[[Any, str], dict] | None = None
    info: dict = field(default_factory=dict)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _profile(case: Case, top: int = 8) -> tuple[list[dict], float]:
    """The functions with the most own time in one more run (outside the timing): name, seconds, share of the
    whole profile; and the whole profile's own time (the one denominator of every share)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    case.run()
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values()) or 1.0
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    out = []
    for (path, line, name), (_, calls, tottime, cumtime, _) in rows:
        short = path.split("site-packages/")[-1].split("/work/main/")[-1]
        out.append({"function": f"{short}:{line}({name})", "calls": calls, "own_s": tottime, "share": tottime / total})
    return out, total


def main(cases: dict[str, Callable[..., Case]]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(cases))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", default=WORK)
    parser.add_argument("--param", action="append", default=[], help="key=value passed to the case")
    parser.add_argument("--profile", action="store_true", help="after the timed runs, one more under cProfile")
    args = parser.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    os.makedirs(args.out, exist_ok=True)

    t0 = time.perf_counter()
    case = cases[args.case](**params)
    setup_s = time.perf_counter() - t0
    gc.collect()
    rss_inputs = _maxrss_mb()

    warm = []
    result = None
    for _ in range(args.warmup):
        t = time.perf_counter()
        result = case.run()
        warm.append(time.perf_counter() - t)
    times = []
    for i in range(args.repeats):
        if result is not None:
            del result
            result = None
            gc.collect()
        t = time.perf_counter()
        result = case.run()
        times.append(time.perf_counter() - t)
    saved = case.save(result, args.out) if case.save is not None and result is not None else {}
    del result  # the profiled run must not hold two results (it would inflate the peak RSS)
    gc.collect()
    profile, profile_total = _profile(case) if args.profile else ([], 0.0)
    record = {
        "case": args.case,
        "setup_s": setup_s,
        "warmup_s": warm,
        "times_s": times,
        "rss_after_inputs_mb": rss_inputs,
        "loadavg": os.getloadavg(),
        "saved": saved or {},
        "info": case.info,
        "profile": profile,
        "profile_total_s": profile_total,
    }
    sys.stdout.flush()
    print("@@RESULT " + json.dumps(record), flush=True)
