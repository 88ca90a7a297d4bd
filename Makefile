# The commands the README shows. Everything runs in a project-local virtual environment.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0
# Where torch comes from. The default spec pins the version; on an index that serves CUDA wheels
# by default (most Linux x86 pip set-ups) name the CPU index, e.g.
#   make install TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# or give a whole spec, e.g. TORCH_SPEC="torch==2.13.0+cpu".
TORCH_SPEC ?= torch==$(TORCH_VERSION)
TORCH_INDEX_URL ?=
TORCH_INDEX_ARG := $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL),)

.PHONY: install install-executorch install-ray run test docs lint bench bench-compress bench-compress-quick bench-runtimes bench-runtimes-quick report baseline check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned (TORCH_SPEC, TORCH_INDEX_URL): an unpinned torch would pull several GB of CUDA packages
	$(BIN)/python -m pip install --quiet $(TORCH_INDEX_ARG) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The phone path (optional extra; CI installs it so the ExecuTorch tests run rather than skip).
# executorch 1.5.1 names no torch in its requirements, so the pinned CPU torch stays.
EXECUTORCH_STAMP := $(VENV)/.executorch
$(EXECUTORCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,executorch]"
	$(BIN)/python -c "import executorch, torch; assert torch.__version__.startswith('$(TORCH_VERSION)'), torch.__version__"
	touch $(EXECUTORCH_STAMP)

install-executorch: $(EXECUTORCH_STAMP)

# Training a search's recover rounds on Ray workers (optional extra; CI installs it so the two-worker
# tests run rather than skip). ray names no torch in its requirements, so the pinned CPU torch stays.
RAY_STAMP := $(VENV)/.ray
$(RAY_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,ray]"
	$(BIN)/python -c "import ray, torch; assert torch.__version__.startswith('$(TORCH_VERSION)'), torch.__version__"
	touch $(RAY_STAMP)

install-ray: $(RAY_STAMP)

run: install
	$(BIN)/compressbench profile --model teacher

test: install
	$(BIN)/python -m pytest

# The user guide (docs/, mkdocs.yml) as a site in site/; --strict turns every warning into a failure.
docs: install
	$(BIN)/mkdocs build --strict --quiet

# The benchmark suite, its report, and the latency gate (see README "Benchmarks and the CI gate").
SUITE := benchmarks/suite.toml
RESULTS := benchmarks/results/results.json
BASELINE := benchmarks/baseline.json
GATED := teacher,exact,prune-0.5,quantize

bench: install
	$(BIN)/compressbench bench $(SUITE) --output $(RESULTS)

# The compression benchmark: every method and chain on the teacher, batch 1, 2 threads, one process.
# The quick one runs the same variants on a reduced random teacher (a smoke test; git-ignored results).
# Results are kept per machine kind: name the folder, e.g. make bench-compress RESULTS_DIR=benchmarks/results/amd-epyc-avx512
RESULTS_DIR ?= benchmarks/results/local
bench-compress: install
	mkdir -p $(RESULTS_DIR)
	$(BIN)/compressbench bench benchmarks/compress.toml --output $(RESULTS_DIR)/compress.json
	$(BIN)/compressbench report $(RESULTS_DIR)/compress.json -o $(RESULTS_DIR)/compress.md

bench-compress-quick: install
	$(BIN)/compressbench bench benchmarks/compress-quick.toml --output benchmarks/results/compress-quick.json
	$(BIN)/compressbench report benchmarks/results/compress-quick.json -o benchmarks/results/compress-quick.md

# Issue-12 benchmark: every runtime x precision, alone vs interleaved; eager at its default OpenMP policy
# (PASSIVE slows eager itself: benchmarks/results/amd-epyc-avx512/omp-policy.md).
bench-runtimes: install
	$(BIN)/python benchmarks/runtimes_benchmark.py --pinning-ab

bench-runtimes-quick: install
	$(BIN)/python benchmarks/runtimes_benchmark.py --quick

report: install
	$(BIN)/compressbench report $(RESULTS) -o reports/REPORT.md

# The committed baseline is tracked: re-recording it needs FORCE=1 (make baseline FORCE=1), or
# record your own elsewhere: make baseline BASELINE=my-baseline.json
baseline: install
	@if [ -z "$(FORCE)" ] && git ls-files --error-unmatch $(BASELINE) >/dev/null 2>&1; then \
		echo "error: $(BASELINE) is tracked by git; re-record it with 'make baseline FORCE=1' or write another file with BASELINE=FILE" >&2; \
		exit 2; \
	fi
	$(BIN)/compressbench baseline --suite $(SUITE) --only $(GATED) --output $(BASELINE)

check: install
	$(BIN)/compressbench check --baseline $(BASELINE)

lint: install
	$(BIN)/ruff check compressbench tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
