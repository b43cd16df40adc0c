# cfm — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install install-test lint messages clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[web]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[web,test,convert]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make run: web server + Celery worker (with the periodic sweeper); SQLite and
## an embedded broker unless DATABASE_URL / REDIS_URL are set.
run: install
	@DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --no-input -v0
	@DEBUG=$${DEBUG:-1} $(PY) manage.py cfm_demo
	@DEBUG=$${DEBUG:-1} bash scripts/run.sh $(HOST) $(PORT)

## make test: the whole suite (PostgreSQL/Redis tests run when DATABASE_URL/REDIS_URL are set).
test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

## make lint: ruff, mypy with django-stubs on cfm/, then the import rules (import-linter); all in pyproject.toml.
lint: install-test
	$(PY) -m ruff check cfm tests benchmarks
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-logo

messages: install
	$(PY) manage.py makemessages -l ja --no-location -i '.venv/*' -i 'var/*' -i 'tests/*' -i 'benchmarks/*'
	$(PY) manage.py compilemessages -l ja -i '.venv/*'

clean:
	rm -rf $(VENV) var
