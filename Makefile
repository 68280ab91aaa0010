# Two entry points, each sets up its own virtual environment in .venv:
#   make demo   ingest the bundled sample evidence into ./demo-case, detect, remediate, and write the HTML report
#   make test   lint and format check (ruff), then the whole test suite (what CI runs); installs Debian's
#               chromium for the browser test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench accuracy browser screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/k8sforensics demo --out demo-case

# The report test opens the HTML in a real headless browser: Debian's chromium package.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# ruff's lint rules and formatter, as configured in pyproject.toml
lint: $(STAMP)
	$(BIN)/ruff check k8sforensics tests benchmarks
	$(BIN)/ruff format --check k8sforensics tests benchmarks

test: lint browser
	K8SF_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q

# The three report pages as a responder first sees them at 1280 px, taken by the browser test
# itself (tests/views/test_report.py) into docs/screenshots.
screenshots: $(STAMP) browser
	K8SF_REQUIRE_BROWSER=1 K8SF_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/views/test_report.py -k self_contained

# The benchmark suite: every measurement next to its baseline from the same run, one table
# (--quick for a few minutes; the full sizes take about 15 minutes on 2 cores).
bench: $(STAMP)
	$(BIN)/python benchmarks/suite.py

# The accuracy harness: 40 scenarios of the breach family plus the demo, each scored against its
# truth; one table per entry shape and overall, every miss with its one-line reproduction.
accuracy: $(STAMP)
	$(BIN)/python benchmarks/accuracy.py --n 40

clean:
	rm -rf $(VENV) demo-case demo-case-evidence .pytest_cache .hypothesis
