# Set-up is part of every target: a fresh clone needs only `make test` or `make demo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The stamp changes whenever the package metadata or the pinned set changes, so set-up reruns then.
STAMP := $(VENV)/.installed

.PHONY: setup test demo demo-quick bench info clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
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
