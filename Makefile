# Two commands for a fresh Debian machine (see README.md):
#   make demo  - the whole path on embedded defaults: broker, server on SQLite, a simulated fleet
#   make test  - the test suite on the real Mosquitto, SQLite and PostgreSQL
# Both install what is missing: system packages (as root, through apt-get) and a virtualenv in .venv.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test system-deps system-deps-test venv lint clean

demo: system-deps $(STAMP)
	$(VENV)/bin/bcast demo

test: system-deps-test $(STAMP)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider -n auto --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check .

system-deps:
	@scripts/system-deps.sh

system-deps-test:
	@scripts/system-deps.sh test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
