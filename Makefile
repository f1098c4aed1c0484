# Two commands on a fresh Debian machine with Python 3.11: `make demo` and `make test`.
# Both create .venv themselves and install what they need.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench system-deps venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	bash tests/install-system-deps.sh

## Execute every notebook on the bundled data and write HTML into reports/.
demo: $(STAMP)
	$(PY) -m qoslab report -o reports --force

## The whole suite: unit tests, doctests of qoslab/, every notebook.
test: $(STAMP) system-deps
	$(PY) -m pytest tests --doctest-modules qoslab --nbmake notebooks -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check qoslab tests benchmarks

## Benchmarks: ratios against the named peers, measured in the same run.
bench: $(STAMP) system-deps
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) reports .pytest_cache
