# The README's words: `make run` sets everything up and runs the platform; `make test` runs the suite.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
DEVENV := $(PY) -m penguinmails.devenv

.PHONY: install run login test bench lint imports typecheck check migrate clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || { echo "[install] creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "[install] upgrading pip"
	@$(PY) -m pip install --quiet --upgrade pip
	@echo "[install] installing the pinned dependencies into $(VENV) (about 30 s the first time)..."
	@$(PY) -m pip install --quiet -e ".[dev,embedded]"
	@touch $@
	@echo "[install] done"

install: $(VENV)/.installed

## Set up (venv, embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set), migrate,
## create the demo tenant and run web, worker, beat, the sandbox SMTP (delivering into Dovecot),
## DNS and IMAP (Dovecot: installed with apt-get when root, else it says how; SANDBOX_IMAP=off).
## Ports: WEB_PORT (8000), SANDBOX_SMTP_PORT (2525), SANDBOX_DNS_PORT (5353),
## SANDBOX_IMAP_PORT (1143); all logs: VERBOSE=1.
run: install
	$(DEVENV) run

## The demo workspace's URLs and login from the last `make run` (.local/demo-login.txt).
login: install
	@$(DEVENV) login

## The whole suite, browser tests included (skipped, saying so, when no Chromium is installed).
test: install
	$(DEVENV) exec -- $(PY) -m pytest $(PYTEST_ARGS)

## Benchmarks (not tests): each prints its figure beside a baseline from the same run.
bench: install
	$(DEVENV) exec -- sh -c 'for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done'

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## Apps import in one direction (DESIGN.md, Layout): the contracts in pyproject's [tool.importlinter].
imports: install
	PYTHONPATH=. $(VENV)/bin/lint-imports

typecheck: install
	$(DEVENV) exec -- $(VENV)/bin/mypy penguinmails tenants webhooks billing infrastructure deliverability warmup reputation campaigns

check: install
	$(DEVENV) exec -- $(PY) manage.py check
	$(DEVENV) exec -- $(PY) manage.py makemigrations --check --dry-run

migrate: install
	$(DEVENV) exec -- $(PY) manage.py migrate_schemas --noinput

clean:
	rm -rf $(VENV) .local staticfiles
