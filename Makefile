# Quick start: `make run` (set up, then start the studio on http://127.0.0.1:7860) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: setup run example test bench assets clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

# torch, for the PyTorch peer in bench/ only (the app and the tests never import it)
$(BENCH_STAMP): requirements-bench.txt $(STAMP)
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $(BENCH_STAMP)

run: setup
	$(PY) app.py

example: setup
	mkdir -p out
	$(PY) -m style_core image assets/content.png assets/style.png -o out/example.png --size 256 --iterations 100 --report out/example.json

# Two workers, a test file each at a time (a file's module fixtures, e.g. the app's server or the
# Ray cluster, start once), after the lint: 593 tests (9 skipped) in 654 s in a fresh clone on a 2-core machine
# (2026-12-07), plus about 5 min for the trained-network tier where ../shared/real-inputs is there.
test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: setup $(BENCH_STAMP)
	$(PY) bench/bench.py
	$(PY) bench/bench_peer.py

assets: setup
	$(PY) assets/make_examples.py

clean:
	rm -rf $(VENV) out .pytest_cache
