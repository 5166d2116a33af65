# netharden: the two set-up commands are `make render` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: render test lint unit docs system-deps clean images molecule precompile bench

# The virtualenv with netharden (editable) and the test tools.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

system-deps:
	sh scripts/install-system-deps.sh

## Render the full example host into out/full-host and explain every file.
render: $(STAMP)
	mkdir -p out
	$(BIN)/netharden render examples/full-host.yaml --format tree --out out/full-host --force
	$(BIN)/netharden explain examples/full-host.yaml

## Install everything (Debian packages + Python), lint, and run the whole test suite.
test: system-deps $(STAMP) lint
	$(BIN)/python -m pytest -ra

## ruff (lint + format check) and mypy over netharden/ (configured in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check netharden
	$(BIN)/ruff format --check netharden
	$(BIN)/mypy

## Build the booted-Debian images of the role's molecule scenario (cached; root).
images:
	sh scripts/build-debian-image.sh

## The role's molecule scenario alone (also part of `make test`).
molecule: system-deps $(STAMP)
	$(BIN)/python -m pytest -ra tests/test_molecule.py

## Fast tests only (no namespaces, no root).
unit: $(STAMP)
	$(BIN)/python -m pytest -ra -m "not netns"

## Regenerate the precompiled schema checker and templates (netharden/_profile_schema_check.py,
## netharden/_templates_compiled.py); tests/test_speed_paths.py fails when they are stale.
precompile: $(STAMP)
	$(BIN)/python -m netharden.precompile --write

## Regenerate the profile reference in README.md from the schema (and the precompiled artefacts).
docs: precompile
	$(BIN)/python -m netharden.reference --write README.md

## Print the speed figures of docs/performance.md (benchmarks/cli.py needs netplan.io).
bench: system-deps $(STAMP)
	$(BIN)/python benchmarks/cli.py
	$(BIN)/python benchmarks/stages.py
	$(BIN)/python benchmarks/fleet.py --io-floor --stages

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
