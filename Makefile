# Two commands for a newcomer: `make demo` and `make test`. Both create or reuse the
# project virtualenv (.venv); a second run installs nothing (the stamp file below is
# newer than every file that decides what gets installed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FAIRSEQ_DIST ?= ve-fairseq==0.12.3
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt

.PHONY: venv test demo clean-venv

venv: $(STAMP)
	@echo "venv: $(VENV) is up to date"

$(STAMP): requirements.txt constraints.txt pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -r requirements.txt
	# fairseq without its declared torchaudio (see README: "Why ve-fairseq")
	$(PIP) --no-deps $(FAIRSEQ_DIST)
	$(PIP) --no-deps --no-build-isolation -e .
	$(BIN)/python scripts/check_env.py
	touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q

# The whole pipeline on the built-in demo corpus with the tiny architecture (configs/strong.yaml,
# corpora.demo): prepare -> train -> average -> generate -> BLEU -> plots, into runs/demo/strong/.
demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/run_strong.sh --corpus demo $(DEMO_ARGS)

clean-venv:
	rm -rf $(VENV)
