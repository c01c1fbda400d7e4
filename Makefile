# Setup contract: `make run` and `make test` create .venv when missing, install, and run.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export NUMBA_CACHE_DIR := $(CURDIR)/.cache/numba
export MPLBACKEND := Agg
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export WFAUDIT_CACHE_DIR := $(CURDIR)/.cache/wfaudit
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: run test test-slow bench venv clean browser

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) (Python >= 3.11)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when the project file changed (stamp files keep it quick when set up).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test]"
	@touch $(VENV)/.installed $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	@mkdir -p $(NUMBA_CACHE_DIR) $(MPLCONFIGDIR)
	$(BIN)/tournament run --preset quick

# Headless Chromium for the report's browser test (Debian package; installed when missing).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser test will fail"; \
	  else echo "no apt-get: install chromium for the browser test"; fi; }

test: $(VENV)/.installed-test browser
	@mkdir -p $(NUMBA_CACHE_DIR) $(MPLCONFIGDIR)
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(VENV)/.installed-test
	@mkdir -p $(NUMBA_CACHE_DIR) $(MPLCONFIGDIR)
	$(BIN)/python -m pytest -m slow

bench: $(VENV)/.installed-test
	@mkdir -p $(NUMBA_CACHE_DIR) $(MPLCONFIGDIR)
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .cache
