"""Per-job log files: each script logs its decisions (dropped dates, sample counts) to its `log:`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def log_to(path: str | None, level: int = logging.INFO) -> logging.Logger:
    """Send the `landcover` loggers to `path` (and stderr), returning the root `landcover` logger.

    An exception that ends the job is logged too, so the job's log says why it failed (Snakemake prints the
    log of a failed job; on a cluster the job's stderr is elsewhere)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    return logging.getLogger("landcover")


def _log_uncaught(kind, value, traceback) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, traceback)
        return
    logging.getLogger("landcover").critical("job failed: %s", value, exc_info=(kind, value, traceback))
