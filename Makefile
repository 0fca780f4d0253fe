# Two commands do everything on a fresh machine with Python 3.10+:
#   make workshop   run notebooks 01..07 on the offline sandbox and write runs/latest/
#   make test       lint + unit tests + the notebook series (papermill) + nbval + by hand
# Both create .venv and install the dependencies first. The sandbox starts and
# stops inside the commands; nothing is left running.
#   make lab           JupyterLab on the offline sandbox, to step through the notebooks by hand
#   make sandbox-stop  stop the detached sandbox that `make lab` (or a notebook) started
#
# The SageMaker SDK (in requirements.txt) is preinstalled on SageMaker notebook
# instances and never needed by the sandbox, so the local venv skips it: it is
# about 1.4 GB and would double the set-up time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The notebooks' committed kernelspec is `conda_python3`, the kernel of a SageMaker notebook
# instance; locally it names this virtualenv's Python, so Jupyter, nbclient and papermill find it.
KERNEL := conda_python3
KERNELSPEC := $(VENV)/share/jupyter/kernels/$(KERNEL)/kernel.json
# PARAMS reaches the runner through the environment, so quotes and braces in it arrive intact:
#   make workshop PARAMS='epochs=1 price_overrides={"train_per_1k:claude-3-haiku": 0}'
PARAMS ?=
export PARAMS
export PYTHONDONTWRITEBYTECODE := 1
# utils/costs.py reads this as the spend opt-in; `make lab` sets it, the nbval pass must never see it.
CONFIRM_SPEND_ENV := WORKSHOP_CONFIRM_SPEND

.PHONY: workshop test lint unit series nbval byhand lab sandbox-stop benchmark clean setup

setup: $(STAMP) $(KERNELSPEC)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is required"'
	$(PYTHON) -m venv $(VENV)
	grep -v '^sagemaker' requirements.txt > $(VENV)/requirements-local.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(VENV)/requirements-local.txt -r requirements-dev.txt
	touch $(STAMP)

$(KERNELSPEC): | $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "$(KERNEL) (workshop .venv)" > /dev/null

workshop: setup
	$(BIN)/python -m utils.runner --params "$$PARAMS"

test: lint unit series nbval

lint: $(STAMP)
	$(BIN)/ruff check utils tests benchmarks notebooks
	$(BIN)/vermin -q --violations --no-tips --eval-annotations -t=3.10- utils tests benchmarks
	$(BIN)/nbstripout --verify notebooks/*.ipynb
	$(BIN)/python -m tests.notebooks.validate_notebooks notebooks

# Three workers on two cores: many sandbox tests wait on lifecycles (sleeping, not computing), so a
# third worker fills those waits (-n 2 left the cores half idle; -n 4 only adds start-up CPU).
# setup, not only the install: the runner's unit tests start kernels by the committed kernelspec.
unit: setup
	env -u AWS_ENDPOINT_URL $(BIN)/python -m pytest -q -n 3 tests/unit

# The notebook-level tests, side by side (-n 3 --dist loadgroup: tests that share state in order are
# one group, run by one worker; the groups are named in tests/notebooks/conftest.py, and every other
# test spreads over the workers): the series notebook by notebook as a least-privilege role, with that
# role's policy analysed on the same run (tests/notebooks/series_run.py), the notebooks' input checks,
# the runner's runs, the by-hand path (nbclient, committed kernelspec and parameters, `make lab`'s
# environment), and the run report in headless Chromium (-rs prints the plain reason when Chromium
# is not installed).
NOTEBOOK_TESTS := tests/notebooks/test_series.py tests/notebooks/test_runner_series.py \
	tests/notebooks/test_caller_policy.py tests/notebooks/test_byhand.py tests/notebooks/test_report_browser.py

series: setup
	$(BIN)/python -m pytest -q -rs -n 3 --dist loadgroup $(NOTEBOOK_TESTS)

nbval: $(STAMP)
	env -u $(CONFIRM_SPEND_ENV) $(BIN)/python -m pytest -q -x -p no:python -p tests.notebooks.sandbox_plugin \
		--nbval-lax --nbval-current-env notebooks/

byhand: setup
	$(BIN)/python -m pytest -q -x tests/notebooks/test_byhand.py

lab: setup
	$(BIN)/python -m utils.lab

sandbox-stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -c 'from utils.sandbox import stop_detached; \
		print("sandbox stopped" if stop_detached() else "no detached sandbox was running")'; fi

benchmark: $(STAMP)
	$(BIN)/python benchmarks/series.py
	$(BIN)/python benchmarks/sandbox_flow.py
	$(BIN)/python benchmarks/generation.py

clean: sandbox-stop
	rm -rf runs .workshop .sandbox .pytest_cache
