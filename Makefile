# Emma: `make demo` shows the mesh working, `make test` runs every check. Both set up what they need.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test up proto check-protos lint pytest redis-server clean

demo: $(STAMP) redis-server
	$(VENV)/bin/emma demo

up: $(STAMP) redis-server
	$(VENV)/bin/emma up --demo

test: $(STAMP) redis-server check-protos lint pytest

pytest: $(STAMP) redis-server
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/buf lint protos
	$(VENV)/bin/ruff check services/emma clients tests bench
	$(VENV)/bin/ruff format --check services/emma clients tests bench
	$(VENV)/bin/mypy

proto: $(STAMP)
	scripts/gen-protos

check-protos: $(STAMP)
	scripts/check-protos

# The environment: a virtualenv on Python 3.11+, with pinned versions from constraints.txt.
# The Python SDK is its own package (clients/python, emma-client); emma depends on it, so both
# are installed from the tree in one go.
$(STAMP): pyproject.toml clients/python/pyproject.toml constraints.txt $(wildcard services/*/__init__.py clients/python/*/__init__.py)
	@scripts/find-python >/dev/null
	@test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ./clients/python -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -c 'import emma.decision.v1.decision_pb2, emma_client, vowpalwabbit, grpc_health, redis' 
	@touch $@

# redis-server is needed by the tests and by `emma up`; install it with apt when we can.
redis-server:
	@scripts/ensure-redis-server

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
