# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: demo test install lint bench accuracy clean

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
	@echo "Map: results/landcover.tif  Report: results/report.html, results/report/"

## test: install what tests need, then run the whole test suite
test: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest -ra

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench:
	$(MAKE) -C benchmarks

## accuracy: the real-data accuracy bench and its ablation -> docs/accuracy.md and the README's Accuracy block
accuracy: install
	$(BIN)/python -m landcover.accuracy

clean:
	rm -rf results logs .snakemake
