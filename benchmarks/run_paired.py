"""Cases that time both sides in turn in one process (a paired comparison that the shared machine's
process-to-process spread does not bias). Imports run_ours and run_peer; neither imports the other.

Run by bench.py as `python run_paired.py CASE --repeats N` under `/usr/bin/time -v`.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import run_ours
import run_peer
from harness import Case, main

warnings.filterwarnings("ignore")


def clouds_paired() -> Case:
    """Row 3: ours and s2cloudless alone, in turn, on the same inputs as the separate processes."""
    ours, peer = run_ours.clouds(), run_peer.s2cloudless()
    times: dict[str, list[float]] = {"ours": [], "s2cloudless": []}

    def run():
        for name, case in (("s2cloudless", peer), ("ours", ours)):
            started = time.perf_counter()
            case.run()
            times[name].append(time.perf_counter() - started)
        return times

    def save(result, out):
        timed = {name: values[1:] for name, values in times.items()}  # without the warm-up pair
        return {name: float(np.median(values)) for name, values in timed.items()} | {"times": timed}

    return Case(run, save)


if __name__ == "__main__":
    main({"clouds_paired": clouds_paired})
