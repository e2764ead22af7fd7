# prosumer-cosim — the two commands the README promises, and a few helpers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# what ruff checks and formats (mypy's packages are in pyproject.toml)
CODE   := cosim cosim_cli models market tests benchmarks scenarios
# Every install is constrained to the versions pinned here (docs/index.md, "Locked installs").
LOCK   := requirements/lock.txt

.PHONY: run test test-rl lint bench docs clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[test,docs]"
	touch $@ $(VENV)/.installed $(VENV)/.installed-docs

$(VENV)/.installed-docs: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[docs]"
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

## test-rl: the optional [rl] extra (PPO: torch, stable-baselines3, sb3-contrib) installed
## beside the test extra, then the tests that train PPO (marked rl; make test leaves them out).
## TORCH is installed first: the CPU build keeps the venv small (a bare `torch` on Linux is a
## CUDA build of several GB); `make test-rl TORCH=torch` lets pip choose.
TORCH ?= torch==2.13.0
$(VENV)/.installed-rl: pyproject.toml $(LOCK) $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -c $(LOCK) "$(TORCH)"
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[test,docs,rl]"
	touch $@

test-rl: $(VENV)/.installed-rl
	$(BIN)/python -m pytest -q -m rl

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

## docs: the documentation site in site/ (mkdocs --strict: any warning fails the build)
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict --site-dir site

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_gmfg.py

## lock: re-resolve $(LOCK) to the newest versions pyproject.toml admits. Upgrading is a
## deliberate commit: re-run the benchmarks (python benchmarks/bench_gmfg.py,
## python benchmarks/bench_dispatch.py, …) and update docs/performance.md if numbers move.
## `make lock LOCK_FLAGS=` keeps the current pins (after editing pyproject.toml);
## `make lock LOCK_FLAGS="-P highspy"` upgrades one package.
LOCK_FLAGS ?= --upgrade
LOCK_TOOLS := $(VENV)/lock-tools

$(LOCK_TOOLS)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/python -m pip install --quiet --upgrade pip pip-tools

lock: $(LOCK_TOOLS)/bin/pip-compile
	mkdir -p $(dir $(LOCK))
	CUSTOM_COMPILE_COMMAND="make lock   # upgrading: see docs/index.md, Locked installs" \
	  $(LOCK_TOOLS)/bin/pip-compile --quiet $(LOCK_FLAGS) --extra test --extra docs \
	  --strip-extras --allow-unsafe --no-emit-options --annotation-style line \
	  --output-file $(LOCK) pyproject.toml

clean:
	rm -rf $(VENV) results site .pytest_cache
