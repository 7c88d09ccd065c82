"""One set of exact versions: requirements.lock.txt pins everything `pip install -e .[test]` installs, this
environment has exactly those versions, and the conda environment in envs/ names the same ones."""

from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"py-opencv": "opencv-python-headless"}


def lock_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def installed_closure(name: str, extras: frozenset[str]) -> dict[str, str]:
    """Every distribution that installing `name[extras]` brings in, with its installed version."""
    seen: dict[str, frozenset[str]] = {}
    todo = [(name, extras)]
    while todo:
        dist_name, wanted = todo.pop()
        key = canonicalize_name(dist_name)
        if key in seen and wanted <= seen[key]:
            continue
        seen[key] = seen.get(key, frozenset()) | wanted
        for line in metadata.distribution(dist_name).requires or []:
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({"extra": extra}) for extra in wanted or {""}):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return {key: metadata.version(key) for key in seen}


def test_the_lock_pins_exactly_what_the_workflow_and_tests_install():
    installed = installed_closure("landcover", frozenset({"test"}))
    installed.pop("landcover")
    pins = lock_versions()
    missing = sorted(set(installed) - set(pins))
    assert not missing, f"requirements.lock.txt lacks {missing}: run `make lock`"
    stale = sorted(set(pins) - set(installed))
    assert not stale, f"requirements.lock.txt pins {stale}, which nothing installs any more: run `make lock`"
    differ = {name: (pins[name], version) for name, version in installed.items() if pins[name] != version}
    assert not differ, f"installed versions differ from the lock (lock, installed): {differ}; run `make install`"


def test_the_conda_environment_pins_the_lock_versions():
    env = yaml.safe_load((REPO / "envs" / "landcover.yaml").read_text())["dependencies"]
    pip = next(d["pip"] for d in env if isinstance(d, dict))
    pins = lock_versions()
    wrong = []
    for spec in [d for d in env if isinstance(d, str) and d.split("=")[0] not in ("python", "pip")] + pip:
        name, _, version = spec.partition("==")
        locked = pins.get(canonicalize_name(CONDA_TO_PYPI.get(name, name)), "")
        # conda-forge drops PyPI's fourth, build-only number (opencv 5.0.0.93 is py-opencv 5.0.0)
        if not version or not (locked == version or locked.startswith(f"{version}.")):
            wrong.append(f"{spec} (lock: {locked or 'absent'})")
    assert not wrong, f"envs/landcover.yaml: {wrong}"
