"""Workflow hygiene: lint, formatting, and one package list for pip and conda."""

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name

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


def _env_lists():
    env = yaml.safe_load((REPO / "envs" / "landcover.yaml").read_text())["dependencies"]
    return [d for d in env if isinstance(d, str)], next(d["pip"] for d in env if isinstance(d, dict))


def test_the_conda_env_names_each_package_once():
    conda, pip = _env_lists()
    names = [canonicalize_name(n) for n in _listed(conda) + _listed(pip)]
    assert len(names) == len(set(names)), (
        f"envs/landcover.yaml lists {sorted(n for n in names if names.count(n) > 1)} twice"
    )


def _listed(requirements):
    return [CONDA_TO_PYPI.get(n, n) for n in (re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower() for r in requirements)]


# Declared but never imported: each has a reason.
USED_WITHOUT_IMPORT = {
    "snakemake": "runs the workflow (scripts get its `snakemake` object)",
    "h5netcdf": "xarray's engine for every per-tile file (engine='h5netcdf')",
    "pygments": "snakemake --report (make demo's last step)",
    "pyarrow": "pandas' Parquet engine (the samples tables)",
}


def _third_party_imports(folders=("landcover", "scripts", "tools")) -> dict[str, str]:
    """Top-level modules imported by the code the workflow and the tools run, each with one file that imports it;
    imports guarded by `except ImportError` (optional extras, named in their error message) are left out."""
    found: dict[str, str] = {}
    local = {"landcover", "tools"}
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            optional = {
                id(node)
                for handler_try in ast.walk(tree)
                if isinstance(handler_try, ast.Try)
                and any(
                    isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                    for h in handler_try.handlers
                )
                for statement in handler_try.body
                for node in ast.walk(statement)
            }
            for node in ast.walk(tree):
                if id(node) in optional:
                    continue
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in local:
                        found.setdefault(top, str(path.relative_to(REPO)))
    return found


def test_what_is_imported_is_declared_and_what_is_declared_is_used():
    """pyproject.toml's dependencies are exactly the distributions the code imports (plus USED_WITHOUT_IMPORT);
    envs/landcover.yaml names the same (test_conda_env_names_the_pyproject_packages) and the lock pins them
    (tests/test_lock.py)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(n) for n in _names(project["dependencies"])}
    owners = packages_distributions()
    imported = {}
    for module, path in _third_party_imports().items():
        assert module in owners, f"{path} imports {module}, which no installed distribution provides"
        for dist in owners[module]:
            imported[canonicalize_name(dist)] = f"{module} in {path}"
    undeclared = {dist: where for dist, where in imported.items() if dist not in declared}
    assert not undeclared, f"imported but not in pyproject.toml's dependencies: {undeclared}"
    unused = declared - set(imported) - {canonicalize_name(n) for n in USED_WITHOUT_IMPORT}
    assert not unused, (
        f"pyproject.toml declares {sorted(unused)}, which nothing in landcover/, scripts/, tools/ imports"
    )


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
