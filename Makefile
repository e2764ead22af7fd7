# prosumer-cosim — the two commands the README promises, and a few helpers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# what ruff checks and formats (mypy's packages are in pyproject.toml)
CODE   := cosim cosim_cli models market tests benchmarks scenarios

.PHONY: run test lint bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	touch $@ $(VENV)/.installed $(VENV)/.installed-docs

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@ $(VENV)/.installed

## run: the built-in default scenario end to end (three equilibria, finite-N simulation)
run: $(VENV)/.installed
	$(BIN)/cosim run scenarios/default.toml --out results/default --overwrite

## test: lint, format check, type check, and the test suite (warnings are errors)
test: $(VENV)/.installed-test
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

## docs: the documentation site in site/ (mkdocs --strict: any warning fails the build)
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict --site-dir site

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_gmfg.py

clean:
	rm -rf $(VENV) results site .pytest_cache
