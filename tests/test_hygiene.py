"""Workflow hygiene: lint, formatting, and one package list for pip and conda."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"py-opencv": "opencv-python-headless"}


def _names(requirements):
    names = {re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower() for r in requirements}
    return {CONDA_TO_PYPI.get(name, name) for name in names}


def test_conda_env_names_the_pyproject_packages():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "envs" / "landcover.yaml").read_text())["dependencies"]
    conda = {d for d in env if isinstance(d, str)}
    pip = next(d["pip"] for d in env if isinstance(d, dict))
    assert _names(project["dependencies"]) == _names(conda) - {"python", "pip"} | _names(pip)


def test_snakemake_lint_is_clean():
    run = subprocess.run(
        [str(BIN / "snakemake"), "--lint", "--cores", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Congratulations" in run.stdout + run.stderr, run.stdout + run.stderr


def test_ruff_is_clean():
    for command in (["check", "."], ["format", "--check", "."]):
        run = subprocess.run([str(BIN / "ruff"), *command], cwd=REPO, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stdout + run.stderr


def test_snakefmt_check_is_clean():
    run = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "workflow/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
