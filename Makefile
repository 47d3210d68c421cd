# Every target sets up on a fresh machine: `make demo`, `make test`, `make docs`,
# `make tutorials`. Each creates .venv when missing; a second run installs nothing (the stamp file
# .venv/.installed is newer than the files that define the environment).
#
# lava-nc 0.10.0 and lava-dl 0.6.0 declare Requires-Python <3.11 and pin old
# torch/numpy. We run them on Python 3.11: their ordinary dependencies come from
# pyproject.toml (installed normally), then the two Lava wheels alone with
# --no-deps --ignore-requires-python; lava_qpsnn/lava/compat.py fixes the one
# import failure of lava-nc 0.10.0 on Python 3.11.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAVA_WHEELS := lava-nc==0.10.0 lava-dl==0.6.0
WORK := build/demo

.PHONY: install demo test test-fast docs tutorials lint clean

install: $(STAMP)

# pip -qq: errors only (a fresh install prints pages of index and build warnings otherwise).
# The peer extra (snnTorch + Brevitas, about 1 MB of pure-Python wheels) is there for the test
# suite, which runs every benchmark's smoke setting, peer_snntorch.py's included; the nir extra
# (nir + nirtorch, pure Python) for NIR graphs in and out, and their tests.
$(STAMP): pyproject.toml Makefile
	@echo "setting up $(VENV): lava-qpsnn and its dependencies (a few minutes on a fresh machine)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -qq --upgrade pip
	@$(PY) -m pip install -qq -e '.[dev,peer,nir]'
	@echo "setting up $(VENV): $(LAVA_WHEELS) (without their Python <3.11 pins)"
	@$(PY) -m pip install -qq --no-deps --ignore-requires-python $(LAVA_WHEELS)
	@touch $(STAMP)
	@echo "$(VENV) is ready"

demo: $(STAMP)
	$(PY) -m lava_qpsnn demo --out $(WORK) --force

test: $(STAMP)
	$(PY) -m ruff check lava_qpsnn netx_export tests benchmarks docs tutorials
	$(PY) -m pytest

# the tests not marked slow: every stage and the spike-exactness checks on small networks (README: Three commands)
test-fast: $(STAMP)
	$(PY) -m ruff check lava_qpsnn netx_export tests benchmarks docs tutorials
	$(PY) -m pytest -m "not slow"

docs: $(STAMP)
	$(PY) docs/build_api.py build/docs

# every tutorial run top to bottom and saved with its outputs and plots
tutorials: $(STAMP)
	$(PY) tutorials/execute.py

lint: $(STAMP)
	$(PY) -m ruff check lava_qpsnn netx_export tests benchmarks docs tutorials

clean:
	rm -rf build
