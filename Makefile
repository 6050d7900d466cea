# Two commands do all set-up: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the package's requirements change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded digits, then its report: curves, confusion matrix, per-class table.
demo: $(STAMP)
	@name=demo-$$(date +%Y%m%d-%H%M%S) && $(BIN)/imgclf train --name $$name --no-progress && \
	  $(BIN)/imgclf report $$name && echo "open runs/$$name/report/report.html to see the run"

# The docs site is built too: --strict turns a broken link into a failure.
# One pytest worker a core (pytest-xdist; each takes one torch thread, tests/conftest.py); idle
# workers steal queued tests from busy ones, so the slowest tests do not end the run alone.
test: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -n auto --dist worksteal tests
	$(BIN)/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
