# Two commands do everything on a fresh machine with Python 3.11:
#   make workshop   run notebooks 01..07 on the offline sandbox and write runs/latest/
#   make test       lint + unit tests + the notebook series (papermill) + nbval
# Both create .venv and install the dependencies first. The sandbox starts and
# stops inside the commands; nothing is left running.
#
# The SageMaker SDK (in requirements.txt) is preinstalled on SageMaker notebook
# instances and never needed by the sandbox, so the local venv skips it: it is
# about 1.4 GB and would double the set-up time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PARAMS ?=
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: workshop test lint unit series nbval benchmark clean setup

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	grep -v '^sagemaker' requirements.txt > $(VENV)/requirements-local.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(VENV)/requirements-local.txt -r requirements-dev.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (workshop)" > /dev/null
	touch $(STAMP)

workshop: $(STAMP)
	$(BIN)/python -m utils.runner $(if $(PARAMS),--params "$(PARAMS)")

test: lint unit series nbval

lint: $(STAMP)
	$(BIN)/ruff check utils tests benchmarks notebooks
	$(BIN)/nbstripout --verify notebooks/*.ipynb
	$(BIN)/python -m tests.notebooks.validate_notebooks notebooks

unit: $(STAMP)
	env -u AWS_ENDPOINT_URL $(BIN)/python -m pytest -q -n 2 tests/unit

series: $(STAMP)
	$(BIN)/python -m pytest -q -x tests/notebooks/test_series.py

nbval: $(STAMP)
	$(BIN)/python -m pytest -q -x -p no:python -p tests.notebooks.sandbox_plugin \
		--nbval-lax --nbval-current-env notebooks/

benchmark: $(STAMP)
	$(BIN)/python benchmarks/series.py
	$(BIN)/python benchmarks/sandbox_flow.py
	$(BIN)/python benchmarks/generation.py

clean:
	rm -rf runs .workshop .sandbox .pytest_cache
