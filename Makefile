# Set-up is part of every target: a fresh clone needs only `make test` or `make demo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# spconv build: cpu, or a CUDA one (cu118, cu120, cu121, cu124, cu126): `make test SPCONV=cu126`.
SPCONV ?= cpu
SPCONV_PACKAGE := $(if $(filter cpu,$(SPCONV)),spconv,spconv-$(SPCONV))
# The stamps change whenever the package metadata, the pinned set or the spconv build changes,
# so set-up reruns then. The demo installs what running needs; the tests add the dev extra
# (pytest, hypothesis, rerun-sdk).
STAMP := $(VENV)/.installed-$(SPCONV)
DEV_STAMP := $(VENV)/.installed-$(SPCONV)-dev
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt

.PHONY: setup test demo demo-quick bench info clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# another spconv build installs the same module: remove it first
	$(PY) -m pip freeze 2>/dev/null | grep -io '^spconv[-a-z0-9]*' | grep -vix '$(SPCONV_PACKAGE)' \
		| xargs -r $(PY) -m pip uninstall --quiet -y
	$(PIP) -e '.[$(SPCONV)]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PIP) -e '.[dev,$(SPCONV)]'
	touch $(DEV_STAMP)

test: $(DEV_STAMP)
	$(PY) -m pytest -q

# The main job: the whole method on the synthetic world; report in runs/demo/.
demo: $(STAMP)
	$(VENV)/bin/zeroseg3d demo --out runs/demo

demo-quick: $(STAMP)
	$(VENV)/bin/zeroseg3d demo --quick --out runs/demo-quick

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

info: $(STAMP)
	$(VENV)/bin/zeroseg3d info

clean:
	rm -rf $(VENV) runs .pytest_cache
