# The two commands of the README:
#   make demo   synthetic data → train synthetic_quick → evaluate → export → plot
#   make test   the whole test suite
#   make bench  the speed benchmark, written to docs/ and the README's table
#   make wheels (on a machine with network) the wheels benchmarks/accelerator.sh
#               installs on a GPU machine that has JAX but no TensorFlow and no
#               network: WHEELS_DIR for that machine's WHEELS_PYTHON (X.Y)
# Each creates the virtual environment .venv from requirements.txt on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= runs/demo
BENCH_JSON ?= docs/bench_cpu.json
WHEELS_DIR ?= wheels
WHEELS_PYTHON ?= 3.11
WHEELS_PLATFORM ?= manylinux2014_x86_64
# What the JAX benchmark imports besides JAX (numpy, ml_dtypes, scipy): Keras
# and its required dependencies (absl-py, h5py, ml-dtypes, namex, numpy,
# optree, packaging, rich and rich's markdown-it-py, mdurl, pygments); our
# package itself goes in with --no-deps.
WHEELS_PACKAGES ?= keras absl-py h5py namex optree packaging rich
export TF_CPP_MIN_LOG_LEVEL ?= 2
export MPLBACKEND ?= Agg

.PHONY: demo test bench bench-readme wheels clean

$(VENV)/.installed: requirements.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest -q -n auto tests

demo: $(VENV)/.installed
	DEMO_DIR=$(DEMO_DIR) PYTHON=$(PY) bash experiments/run_demo.sh

# The benchmark on this machine, its JSON in docs/ and its table in the
# README's results block; bench-readme only renders the JSON again.
bench: $(VENV)/.installed
	$(PY) -m jgr_p2o_tf.bench --output_json=$(BENCH_JSON) --update_readme=README.md \
	    $(if $(wildcard $(DEMO_DIR)/model/last.keras),--accuracy_model=$(DEMO_DIR)/model)

bench-readme: $(VENV)/.installed
	$(PY) -m jgr_p2o_tf.bench --from_json=$(BENCH_JSON) --update_readme=README.md

wheels: $(VENV)/.installed
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir=$(WHEELS_DIR) .
	$(PY) -m pip download --quiet --dest=$(WHEELS_DIR) --only-binary=:all: \
	    --platform=$(WHEELS_PLATFORM) --python-version=$(WHEELS_PYTHON) \
	    keras==$$($(PY) -c "import keras; print(keras.__version__)") \
	    $(filter-out keras,$(WHEELS_PACKAGES))
	ls $(WHEELS_DIR)

clean:
	rm -rf $(VENV) runs .pytest_cache
