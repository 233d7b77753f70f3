# The two README commands: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.evoaug-installed
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: run test test-fast lint typecheck check bench docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# setuptools warns about every editable install (a folder named like the package); it is one.
	PYTHONWARNINGS=ignore::UserWarning $(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: the main job on the embedded default (scikit-learn digits, no download)
run: $(STAMP)
	$(VENV)/bin/evoaug fit --config recipes/digits.yaml

## test: the whole test suite, slow tests included
test: $(STAMP)
	$(PY) -m pytest -q

## test-fast: skip the tests marked slow
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check evoaug tests bench docs/*.py
	$(PY) -m ruff format --check evoaug tests bench docs/*.py

typecheck: $(STAMP)
	$(PY) -m mypy

check: lint typecheck test

bench: $(STAMP)
	$(PY) bench/throughput.py

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
