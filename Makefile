# The commands the README shows. Everything runs in a project-local virtual environment.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0

.PHONY: install run test lint bench bench-compress bench-compress-quick bench-runtimes bench-runtimes-quick report baseline check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build; an unpinned torch would pull several GB of CUDA packages
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/compressbench profile --model teacher

test: install
	$(BIN)/python -m pytest

# The benchmark suite, its report, and the latency gate (see README "Benchmarks and the CI gate").
SUITE := benchmarks/suite.toml
RESULTS := benchmarks/results/results.json
BASELINE := benchmarks/baseline.json
GATED := teacher,exact,prune-0.5,quantize

bench: install
	$(BIN)/compressbench bench $(SUITE) --out $(RESULTS)

# Issue-4 benchmark: every method and chain on the teacher, batch 1, 2 threads, one process.
bench-compress: install
	$(BIN)/python benchmarks/compress_benchmark.py

bench-compress-quick: install
	$(BIN)/python benchmarks/compress_benchmark.py --quick

# Issue-12 benchmark: every runtime x precision, alone vs interleaved; torch's OpenMP told not to spin.
bench-runtimes: install
	$(BIN)/python benchmarks/runtimes_benchmark.py --omp-passive --pinning-ab

bench-runtimes-quick: install
	$(BIN)/python benchmarks/runtimes_benchmark.py --quick

report: install
	$(BIN)/compressbench report $(RESULTS) -o reports/REPORT.md

baseline: install
	$(BIN)/compressbench baseline --suite $(SUITE) --only $(GATED) --out $(BASELINE)

check: install
	$(BIN)/compressbench check --baseline $(BASELINE)

lint: install
	$(BIN)/ruff check compressbench tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
