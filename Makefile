# kdas_lab — two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.kdas_installed

.PHONY: setup browser demo test test-fast lab bench clean

setup: $(STAMP) browser

# Re-installs only when the project's dependency list changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "kdas_lab needs Python 3.10+"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.14.1 torchvision==0.29.1
	$(PIP) install --quiet -e ".[notebooks,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

# Debian's chromium for tests/test_browser.py (Playwright drives it; its own browser download is not used).
browser:
	@command -v chromium >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium; \
	else echo "note: no chromium (installing it needs root and apt-get): tests/test_browser.py will skip"; fi

demo: setup
	$(PY) -m kdas_lab demo --out runs/demo

test: setup
	$(VENV)/bin/ruff check .
	KDAS_FAST=1 $(PY) -m pytest -q tests
	KDAS_FAST=1 $(PY) -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

test-fast: setup
	KDAS_FAST=1 $(PY) -m pytest -q -x tests -m "not slow and not realdata and not browser"

lab: setup
	$(VENV)/bin/jupyter lab notebooks

bench: setup
	$(PY) -m kdas_lab bench --json runs/bench.json

clean:
	rm -rf runs build *.egg-info .pytest_cache
