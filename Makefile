# rlexp: `make demo` trains a default agent, `make test` runs the tests. Both set up .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q -c constraints.txt
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench clean

# (Re)install when the dependency files change. The editable install puts this checkout on
# sys.path (compat mode) so that Hydra finds the sweeper in hydra_plugins/ here: it discovers
# plugins by listing that namespace's folders, which setuptools' default editable finder hides. constraints.txt pins the tested versions;
# torch==2.13.0 resolves to the CPU build where a local wheel is provided, CUDA elsewhere.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[test]' --config-settings editable_mode=compat
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rlexp train
	@echo "Curves: metrics.jsonl above (or 'wandb sync' the offline run). Next: '$(BIN)/rlexp --help'."

lint: $(STAMP)
	$(BIN)/ruff check rlexp hydra_plugins tests scripts

# One test worker per core, each torch process on one thread: workers of several threads each
# spin on shared cores and run slower than one worker alone. --dist loadfile keeps a file's
# tests (and its module fixtures, such as the resume baselines) on one worker.
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

test: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=20

# The edit loop: everything but the tests marked slow (learning, subprocesses, whole pipelines).
test-fast: lint
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PIP) -e '.[test,bench]' --config-settings editable_mode=compat
	$(BIN)/python scripts/bench_dqn_cartpole.py

clean:
	rm -rf $(VENV) build dist *.egg-info
