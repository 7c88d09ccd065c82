# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
LOCK := requirements.lock.txt

.PHONY: demo test install browser lint bench accuracy clean docs lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Exactly the versions of the lock file (tests/test_lock.py fails when pyproject.toml needs one it lacks).
$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[test]'
	touch $@

install: $(VENV)/.installed

## demo: install, then run the whole workflow on the embedded synthetic area (config/config.yaml)
demo: install
	$(BIN)/snakemake --profile profiles/default --cores $(CORES)
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) --report results/report.html
	@echo "Map: results/landcover.tif  Viewer: results/map.html  Report: results/report.html, results/report/"

## test: install what tests need, then run the whole test suite
test: install browser
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest -ra

# The viewer's test drives Debian's chromium (Playwright cannot download its own browser here); GDAL's
# gdalinfo checks the map's class names. Installed when missing and running as root.
browser:
	@command -v chromium >/dev/null && command -v gdalinfo >/dev/null || \
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium gdal-bin >/dev/null; \
	else echo "chromium or gdalinfo is missing (apt-get install chromium gdal-bin as root): the viewer tests will fail"; fi

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## docs: regenerate config/README.md (every config key, from the schema) and the README's Sentinel Hub plan
## block; tests/test_config.py and tests/test_readme.py check both
docs: install
	$(BIN)/python -m landcover.config workflow/schemas/config.schema.yaml > config/README.md.tmp
	mv config/README.md.tmp config/README.md
	$(BIN)/python -m tools.readme

## lock: resolve pyproject.toml's packages afresh in a clean venv and write their versions to requirements.lock.txt
## (then pin envs/landcover.yaml to the same versions; tests/test_lock.py names any that differ)
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[test]'
	sed -n '/^#/p' $(LOCK) > $(LOCK).tmp
	.lock-venv/bin/pip freeze --exclude-editable >> $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf .lock-venv

bench:
	$(MAKE) -C benchmarks

## accuracy: the real-data accuracy bench and its ablation -> docs/accuracy.md and the README's Accuracy block
accuracy: install
	$(BIN)/python -m tools.accuracy

clean:
	rm -rf results logs .snakemake
