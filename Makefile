# conv3d-parity: `make conformance` (or `make bench`) and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU set. torch 2.13.0 is pinned first: it is the CPU wheel on this machine's disk.
EXTRAS ?= torch,tensorflow,keras,jax,onnxruntime,openvino,paddle,tinygrad,ray,test
TORCH_PIN ?= torch==2.13.0
JOBS ?= 2
PROFILE ?= ci
WORKLOADS ?= default

.PHONY: install test conformance bench bench-wide report mutants lint clean gpu-report

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@# tinygrad's CPU device compiles with clang: install it where we may (root with apt-get),
	@# else the tinygrad backend reports itself unavailable and why.
	@command -v clang >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && apt-get install -y -qq clang >/dev/null; } || true
	touch $(STAMP)

# Two pytest processes; a backend's conformance checks stay in one of them (one worker each). The
# plugin's forward checks of every CPU backend (quick profile) run beside tests/; the backward
# direction is tested by tests/test_gradients.py and `make conformance`. tinygrad compiles a C
# kernel per shape (3 minutes for the quick profile) and openvino-default is openvino with the
# plugin's own precision hint: `make conformance` checks both. The covering check (67 fixed cases,
# a compile per shape on every framework) runs here on our two backends only
# (tests/test_coverage.py); `make conformance` runs it on all.
TEST_CHECKS ?= exact,realistic,extreme,invalid,worked,workload,property,layer
test: install
	$(PY) -m pytest -q -n $(JOBS) --dist loadgroup --conv3d-backend all --conv3d-exclude tinygrad --conv3d-exclude openvino-default \
		--conv3d-direction forward --conv3d-checks $(TEST_CHECKS)

conformance: install
	$(PY) -m conformance --backend all --profile $(PROFILE) -j $(JOBS) --report reports/conformance

bench: install
	$(PY) -m bench --backend all --workloads $(WORKLOADS) --out reports/bench
	$(PY) -m bench.phases --workloads $(WORKLOADS) --out reports/bench/phases.md

# numba-direct against the frameworks on the wide set (48 CSV layers, stratified), forward.
bench-wide: install
	$(PY) -m bench --backend numba-direct --backend numpy-im2col --backend torch --backend tensorflow \
		--backend jax --workloads wide --direction forward --out reports/bench-wide

report: install
	$(PY) -m conformance.report reports/conformance
	$(PY) -m bench.report reports/bench

mutants: install
	$(PY) -m conformance.mutants --seed 0 --seed 1 --seed 2 --seed 3 --seed 4 --seed 5 --seed 6 --seed 7 --seed 8 --seed 9 --report reports/conformance

lint: install
	$(PY) -m ruff check .

gpu-report:
	$(PYTHON) -m conformance --backend torch-cuda --backend torch-cuda-tf32 --backend cupy-im2col \
		--backend jax --profile $(PROFILE) --report reports/gpu/conformance
	$(PYTHON) -m bench --backend torch-cuda --backend cupy-im2col --workloads $(WORKLOADS) \
		--out reports/gpu/bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .conformance *.egg-info build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
