# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: demo test install browser lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
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

bench:
	$(MAKE) -C benchmarks

clean:
	rm -rf results logs .snakemake
