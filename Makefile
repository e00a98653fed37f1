# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LEAFLET := admin/static/vendor/leaflet/VERSION
NLU_BUNDLE := nlu/bundled/.trained

.PHONY: run test install lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "citybots needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Leaflet, for the panel's Map page, from the npm registry (checked against its sha512).
$(LEAFLET): scripts/fetch_leaflet.py
	$(PYTHON) scripts/fetch_leaflet.py

# The hotline's classifier, trained once into the package (nlu/bundled) so that no start
# (make run, the tests' subprocesses) trains it while nlu/data is unchanged.
$(NLU_BUNDLE): $(STAMP) $(wildcard nlu/data/*.yml) nlu/data.py nlu/features.py nlu/model.py
	$(BIN)/citybots nlu train --bundle
	@touch $@

install: $(STAMP) $(LEAFLET) $(NLU_BUNDLE)

run: install
	$(BIN)/citybots run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m presentation.catalogue_check

test: lint
	@bash scripts/ensure-debian-package.sh /usr/bin/chromium chromium "The browser tests"
	@bash scripts/ensure-debian-package.sh /usr/sbin/nginx nginx-light "The chaos tests (nginx as the load balancer)"
	@bash scripts/ensure-debian-package.sh /usr/bin/docker-compose docker-compose "The compose-file tests (docker-compose config)"
	@bash scripts/ensure-debian-package.sh /usr/bin/caddy caddy "The Caddyfile test (caddy adapt)"
	@mkdir -p var/screenshots
	CITYBOTS_SCREENSHOTS=$(CURDIR)/var/screenshots $(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/sandbox_roundtrip.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
