# The two commands of the README. Each sets everything up first, so either works on a fresh machine.
PYTHON ?= python3

.PHONY: setup demo test bench

setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

demo: setup
	$(PYTHON) -m lm4vis demo

test: setup
	$(PYTHON) -m pytest -q --durations=30 tests

bench: setup
	$(PYTHON) benchmarks/run_all.py
