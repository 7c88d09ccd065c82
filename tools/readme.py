"""The README's generated blocks: the text between `<!-- name:start -->` and `<!-- name:end -->` is written by a
command (`make accuracy`, `make bench`, `make docs`), never typed, so every figure in it has a command behind it.

`python -m tools.readme` (`make docs`) rewrites the blocks that need no run: the Sentinel Hub plan of the
country config.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

from landcover.atomic import atomic_path

REPO = Path(__file__).resolve().parents[1]
PLAN_COMMAND = ["plan", "--no-catalog", "--configfile", "config/slovenia-cdse.yaml"]


def replace_block(text: str, name: str, block: str, source: str = "README.md") -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{source}: no <!-- {name}:start --> ... <!-- {name}:end --> block to rewrite")
    return pattern.sub(lambda m: m.group(1) + block + m.group(2), text)


def write_blocks(readme: str | Path, blocks: dict[str, str]) -> None:
    readme = Path(readme)
    text = readme.read_text()
    for name, block in blocks.items():
        text = replace_block(text, name, block, str(readme))
    with atomic_path(readme) as tmp:
        tmp.write_text(text)


def plan_block() -> str:
    """`landcover plan --no-catalog` on the country config, run from the checkout as the README shows it."""
    from landcover.cli import main

    out = io.StringIO()
    with contextlib.chdir(REPO), contextlib.redirect_stdout(out):
        main(PLAN_COMMAND)
    return f"```console\n$ landcover {' '.join(PLAN_COMMAND)}\n{out.getvalue()}```\n"


if __name__ == "__main__":
    write_blocks(sys.argv[1] if len(sys.argv) > 1 else REPO / "README.md", {"plan": plan_block()})
