# FlagShip developer commands. `make run` starts it with demo data; `make test` is what CI runs
# (through .ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Django 6 needs Python 3.12 or newer: take the first such interpreter on PATH or under pyenv.
PYTHON ?= $(shell for p in python3.12 python3.13 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V) python3; do \
	if $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then echo $$p; break; fi; done)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt sdk/python/pyproject.toml | sha1sum | cut -c1-12)

# Where `make run` serves; loopback only (this is the development server).
ADDRESS ?= 127.0.0.1:8000

.PHONY: help install run lint format typecheck migrations-check graphql-schema-check test test-only coverage-branch sdk-standalone bench-engine mutants clean validate-deploy

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "FlagShip needs Python 3.12 or newer; none found" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a requirements file or the SDK's metadata changes; the SDK is editable.
$(STAMP): | $(BIN)/python
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 12))' || { \
		echo "$(VENV) holds an older Python; recreating it with $(PYTHON)"; rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e ./sdk/python
	touch $@

install: $(STAMP) ## Create .venv and install everything from the project's files

run: install ## Start FlagShip with demo data on http://127.0.0.1:8000 (SQLite unless DATABASE_URL)
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo
	@echo
	@echo "FlagShip: sign in at http://$(ADDRESS)/admin/ as admin (superuser), administrator,"
	@echo "release-manager, editor or viewer. Passwords: printed above when just generated, else"
	@echo "FLAGSHIP_DEMO_PASSWORD or the ones you kept (reset: $(BIN)/python manage.py changepassword admin)."
	@echo
	$(BIN)/python manage.py runserver $(ADDRESS)

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy --strict over the whole repository
	$(BIN)/mypy sdk/python/src sdk/python/tests sdk/python/tools sdk/python/live_tests examples bench flagship flags accounts manage.py

migrations-check: install ## Fail when a model change has no migration
	DJANGO_ENV=test $(BIN)/python manage.py makemigrations --check --dry-run

# docs/schema.graphql is the GraphQL schema the code builds (manage.py graphql_schema writes it).
graphql-schema-check: install ## Fail when docs/schema.graphql is not the code's GraphQL schema
	DJANGO_ENV=test $(BIN)/python manage.py graphql_schema --check

# The CI files, checked here since no GitHub runs them: every workflow against the GitHub-workflow
# schema and the rule that each job has a timeout, dependabot.yml against its schema
# (check-jsonschema's vendored copies: no network), and the pre-commit configuration.
# flagship/tests/test_ci_files.py checks what the schemas cannot.
.PHONY: validate-ci
validate-ci: install ## Validate the workflows, dependabot.yml and .pre-commit-config.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema custom.github-workflows-require-timeout .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/pre-commit validate-config .pre-commit-config.yaml

# .ci/with-services provides PostgreSQL and Redis: DATABASE_URL/REDIS_URL when set, else throwaway
# instances when the servers are installed, else SQLite and the local-memory cache (skipping,
# and listing, the tests that need them). PYTEST_ARGS passes options, e.g. PYTEST_ARGS="-k seed".
# TEST_WORKERS pytest processes (pytest-xdist) share the tests one by one ("--dist load" keeps
# pytest-django's order on each worker: transactional tests, which flush the database, come last);
# TEST_WORKERS=0 runs in one process. The 25 slowest tests are listed at the end (--durations):
# the suite's budget is 15 minutes on 2 cores, and that list is where to look when it grows.
TEST_WORKERS ?= 2
test-only: install ## Run the test suite without lint and types
	DJANGO_ENV=test .ci/with-services $(BIN)/pytest -n $(TEST_WORKERS) --dist load --durations=25 $(PYTEST_ARGS)

# The suite measures lines (sys.monitoring: cheap); branches need the tracer, which doubles the
# suite's time, so they are measured on demand (a report of the branches never taken).
coverage-branch: install ## Run the test suite measuring branch coverage too (twice as slow)
	COVERAGE_CORE=ctrace $(MAKE) test-only PYTEST_ARGS="--cov-branch $(PYTEST_ARGS)"

# The SDK as its users get it: `pip install ./sdk/python[test]` into a fresh virtualenv without
# Django (checked), then the SDK's own suite with its own configuration (sdk/python/pyproject.toml).
SDK_VENV ?= .venv-sdk
sdk-standalone: ## Install the SDK alone in a clean virtualenv and run its own test suite
	@test -n "$(PYTHON)" || { echo "needs Python 3.12 or newer" >&2; exit 1; }
	rm -rf $(SDK_VENV)
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "./sdk/python[test]"
	@if $(SDK_VENV)/bin/python -c 'import django' 2>/dev/null; then \
		echo "sdk-standalone: Django is installed in $(SDK_VENV); the SDK must not need it" >&2; exit 1; fi
	cd sdk/python && ../../$(SDK_VENV)/bin/python -m pytest -q -p no:cacheprovider
	rm -rf $(SDK_VENV) sdk/python/build sdk/python/src/flagship_sdk.egg-info

# newman, pinned by tools/postman/package-lock.json, for flagship/tests/test_postman.py (the Postman
# collection end to end against a fresh `make run`). npm ci runs when the lock file is newer than the
# install. Without npm that test is skipped, or fails under FLAGSHIP_REQUIRE_SERVICES=1 (CI).
postman: ## Install newman (npm ci, pinned) for the Postman collection's test
	@if ! command -v npm >/dev/null; then \
		echo "make postman: npm (Node.js 20+) is missing: the Postman collection's test cannot run" >&2; \
	elif [[ tools/postman/package-lock.json -nt tools/postman/node_modules/.package-lock.json ]]; then \
		cd tools/postman && npm ci --no-audit --no-fund; \
	fi

# The deployment files, checked here without a Docker engine: hadolint on the Dockerfile, both
# Compose files against the Compose specification's JSON schema (check-jsonschema's builtin copy),
# and the proxy's configuration by Caddy itself (Debian's `caddy`; .ci/run installs it). The
# commands the Compose files run are started behind Caddy by flagship/tests/test_compose_stack.py.
validate-deploy: install ## Lint the Dockerfile, validate the Compose files and the Caddyfile
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.dev.yml docker-compose.prod.yml
	@command -v caddy >/dev/null || { echo "validate-deploy: caddy is missing (Debian: apt-get install caddy; .ci/run installs it)" >&2; exit 1; }
	caddy validate --adapter caddyfile --config deploy/Caddyfile

test: lint typecheck migrations-check graphql-schema-check validate-ci validate-deploy postman test-only sdk-standalone ## Lint, type-check and run every test

bench-engine: install ## The engine benchmark: W1-W4 against a hand-written baseline
	$(BIN)/python -m bench.engine.run

mutants: install ## Check that the engine's tests kill deliberate bugs (about a minute)
	$(BIN)/python sdk/python/tools/mutants.py

clean: ## Remove caches and the virtualenv (the SQLite database db.sqlite3 stays)
	rm -rf $(VENV) $(SDK_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage htmlcov
