# The two commands of the README:
#   make demo   synthetic data → train synthetic_quick → evaluate → export → plot
#   make test   the whole test suite
# Both create the virtual environment .venv from requirements.txt on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= runs/demo
export TF_CPP_MIN_LOG_LEVEL ?= 2
export MPLBACKEND ?= Agg

.PHONY: demo test bench clean

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

bench: $(VENV)/.installed
	$(PY) -m jgr_p2o_tf.bench --output_json=$(DEMO_DIR)/bench.json

clean:
	rm -rf $(VENV) runs .pytest_cache
