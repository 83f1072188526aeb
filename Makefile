# Two entry points: `make demo` (the main job) and `make test` (the suite).
# Both create and reuse a local virtual environment in .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PIP := $(BIN)/python -m pip install -q --no-compile -c constraints.txt
JOBS ?= 2

.PHONY: demo test install clean-venv

install: $(STAMP)

# pip byte-compiles one file at a time; compileall -j 0 uses every core.
# Like pip's own step it skips files this Python cannot compile (torch
# ships one for 3.12 only), so its exit status is not the build's.
COMPILE := $(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade "setuptools<82" wheel
	$(PIP) torch==2.13.0
	$(PIP) -e .
	$(COMPILE)
	touch $(STAMP)

# the test tools, only for make test
$(TEST_STAMP): $(STAMP)
	$(PIP) -e ".[test]"
	$(COMPILE)
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/python tools/demo.py

test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(JOBS) tests

clean-venv:
	rm -rf $(VENV)
